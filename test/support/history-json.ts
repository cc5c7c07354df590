import { temporal } from '@temporalio/proto';

/**
 * The file form of a recorded history (test/fixtures/histories/): protobufjs's object form with
 * enums, 64-bit integers and bytes as strings. Not the proto3 JSON of `temporal workflow show`: in
 * this install @temporalio/common's historyToJSON/historyFromJSON (protobufjs 8) cannot read the types
 * of @temporalio/proto (protobufjs 7) and throw "type must be a Type", and Worker.runReplayHistory
 * uses the same reader for anything that is not a History already. The run's workflow id and run id
 * ride along at the top (a history does not name its own workflow; protobufjs ignores the extra keys).
 */
const { History } = temporal.api.history.v1;

export interface RecordedRun {
  workflowId: string;
  runId: string;
}

export function historyToFile(history: temporal.api.history.v1.IHistory, run: RecordedRun): string {
  const object = History.toObject(History.fromObject(history), { enums: String, longs: String, bytes: String });
  return `${JSON.stringify({ workflowId: run.workflowId, runId: run.runId, ...object }, null, 1)}\n`;
}

export function historyFromFile(text: string): RecordedRun & { history: temporal.api.history.v1.History } {
  const object = JSON.parse(text) as RecordedRun & Record<string, unknown>;
  return { workflowId: object.workflowId, runId: object.runId, history: History.fromObject(object) };
}
