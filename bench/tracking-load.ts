import autocannon from 'autocannon';

/**
 * The load generator of bench/tracking, run as its own process (so the server under test does not
 * share an event loop with the client). Reads one JSON job from argv, cycles through its paths,
 * prints autocannon's figures as one JSON line.
 */
interface Job {
  url: string;
  paths: string[];
  method: 'GET' | 'HEAD';
  connections: number;
  durationSec: number;
  userAgent: string;
}

const job = JSON.parse(process.argv[2] ?? '{}') as Job;
let i = 0;
const instance = autocannon(
  {
    url: job.url,
    connections: job.connections,
    duration: job.durationSec,
    headers: { 'user-agent': job.userAgent },
    requests: [
      {
        method: job.method,
        setupRequest: (req) => ({ ...req, path: job.paths[i++ % job.paths.length]! }),
      },
    ],
  },
  (err, result) => {
    if (err) {
      process.stderr.write(`tracking-load: ${err.message}\n`);
      process.exit(1);
    }
    const codes: Record<string, number> = {};
    for (const k of ['1xx', '2xx', '3xx', '4xx', '5xx'] as const) codes[k] = result[k];
    process.stdout.write(
      JSON.stringify({
        requestsPerSec: result.requests.average,
        total: result.requests.total,
        p50: result.latency.p50,
        p99: result.latency.p99,
        errors: result.errors,
        timeouts: result.timeouts,
        codes,
      }) + '\n',
    );
  },
);
process.once('SIGTERM', () => instance.stop());
