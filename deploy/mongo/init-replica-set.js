// Initiates the MongoDB replica set `rs0` of the compose stack, once.
//
// Run by the one-shot `mongo-init` service (see docker-compose.yml):
//   mongosh --quiet --norc --host mongo1:27017 /scripts/init-replica-set.js
//
// Why a replica set at all: a standalone mongod is a single point of failure. Three members
// survive the loss of one (the others elect a new primary), and replica sets are what production
// MongoDB (Atlas included) looks like, so the driver behaves here as it will there.
//
// Idempotent: on every `docker compose up` it first asks rs.status(); an already initiated set
// (the configuration lives in the members' volumes) is left untouched. In both cases it waits
// until a PRIMARY is elected, so services that depend on `mongo-init` completing successfully
// start against a writable replica set. Exit code 0 = ready, non-zero = the stack must not start.

const REPLICA_SET = 'rs0';
const WAIT_FOR_PRIMARY_MS = 120_000;

const config = {
  _id: REPLICA_SET,
  members: [
    // mongo1 gets a higher priority only so the primary is predictable after restarts
    // (easier to read logs); any member can take over when it is gone.
    { _id: 0, host: 'mongo1:27017', priority: 2 },
    { _id: 1, host: 'mongo2:27017', priority: 1 },
    { _id: 2, host: 'mongo3:27017', priority: 1 },
  ],
};

/** rs.status(), or null while the set has not been initiated (error 94 NotYetInitialized). */
function replicaSetStatus() {
  try {
    return rs.status();
  } catch (err) {
    if (err.code === 94 || err.codeName === 'NotYetInitialized') return null;
    throw err;
  }
}

const status = replicaSetStatus();
if (status === null) {
  print(`${REPLICA_SET}: not initiated yet; initiating with ${config.members.map((m) => m.host).join(', ')}`);
  try {
    rs.initiate(config);
  } catch (err) {
    // 23 AlreadyInitialized: another run got there first (e.g. two `up`s racing). That is fine.
    if (err.code !== 23 && err.codeName !== 'AlreadyInitialized') throw err;
    print(`${REPLICA_SET}: already initiated by someone else`);
  }
} else {
  const hosts = status.members.map((m) => m.name).sort().join(', ');
  print(`${REPLICA_SET}: already initiated (members: ${hosts}); configuration left as is`);
}

// Wait for an elected primary. Transient errors right after rs.initiate() (the node is
// re-configuring itself) are expected, so they are retried until the deadline.
const deadline = Date.now() + WAIT_FOR_PRIMARY_MS;
for (;;) {
  let primary;
  let lastError = '';
  try {
    const current = replicaSetStatus();
    primary = current && current.members.find((m) => m.stateStr === 'PRIMARY');
  } catch (err) {
    lastError = String(err && err.message ? err.message : err);
  }
  if (primary) {
    print(`${REPLICA_SET}: ready, primary is ${primary.name}`);
    break;
  }
  if (Date.now() > deadline) {
    print(`${REPLICA_SET}: no primary after ${WAIT_FOR_PRIMARY_MS / 1000}s ${lastError ? `(last error: ${lastError})` : ''}`);
    quit(1);
  }
  sleep(1000);
}
