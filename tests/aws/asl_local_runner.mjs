// Executes one Amazon States Language definition with npm's aws-local-stepfunctions (a second, maintained ASL
// interpreter with AWS's JSONPath and error semantics: an absent path raises States.Runtime, which no Retry or
// Catch matches). Driven by tests/aws/asl_local.py.
//
// stdin: {"definition": {...}, "input": {...}, "context": {...}, "answers": {"<Task state>": [answer, ...]}}
//   answer: {"result": <the integration's response>} | {"error": "<Error name>", "cause": "<Cause>"},
//           optionally with "match": {...} (a subset of the task's effective input) to pick among answers when
//           iterations run concurrently (Map). Answers of a state are consumed in order.
// stdout: {"status": "SUCCEEDED" | "FAILED", "output", "error", "cause", "states": [entered, in order],
//          "events": [{"type", "state"}] (retries and catches), "task_inputs": {"<state>": [effective input, ...]}}
//
// Waits and retry intervals are overridden to 0 ms; everything else (paths, ResultSelector, Choice, Retry
// counting, Catch matching, Map, intrinsic functions) is the library's own.

// aws-local-stepfunctions 3.0.0 declares node >= 22 and uses ONE newer API, Promise.withResolvers (ES2024, for its
// Task timeout). Debian/NodeSource's node 20 here lacks it: this is the standard's definition, nothing more.
if (typeof Promise.withResolvers !== "function") {
  Promise.withResolvers = function withResolvers() {
    let resolve;
    let reject;
    const promise = new this((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}
const { StateMachine } = await import("aws-local-stepfunctions");

function readStdin() {
  return new Promise((resolve, reject) => {
    let data = "";
    process.stdin.setEncoding("utf8");
    process.stdin.on("data", (chunk) => (data += chunk));
    process.stdin.on("end", () => resolve(data));
    process.stdin.on("error", reject);
  });
}

function isSubset(expected, actual) {
  if (expected === null || typeof expected !== "object") return expected === actual;
  if (actual === null || typeof actual !== "object") return false;
  return Object.entries(expected).every(([key, value]) => isSubset(value, actual[key]));
}

function walkStates(states, visit) {
  for (const [name, state] of Object.entries(states)) {
    visit(name, state);
    const nested = state.ItemProcessor ?? state.Iterator;
    if (nested) walkStates(nested.States, visit);
    for (const branch of state.Branches ?? []) walkStates(branch.States, visit);
  }
}

// An error no Retry/Catch matches: a missing scripted answer must fail the test, not be handled by the machine.
function harnessError(message) {
  const error = new Error(message);
  error.name = "Harness.NoAnswer";
  error.isRetryable = false;
  error.isCatchable = false;
  return error;
}

const scenario = JSON.parse(await readStdin());
const answers = scenario.answers ?? {};
const taskInputs = {};
const handlers = {};
const waits = {};
const retryIntervals = {};
walkStates(scenario.definition.States, (name, state) => {
  if (state.Type === "Wait") waits[name] = 0;
  if (state.Retry) retryIntervals[name] = 0;
  if (state.Type !== "Task") return;
  handlers[name] = async (input) => {
    (taskInputs[name] ??= []).push(input);
    const queue = answers[name] ?? [];
    const index = queue.findIndex((answer) => !answer.match || isSubset(answer.match, input));
    if (index < 0) throw harnessError(`no scripted answer left for ${name} (input ${JSON.stringify(input)})`);
    const [answer] = queue.splice(index, 1);
    if ("error" in answer) {
      const error = new Error(answer.cause ?? "");
      error.name = answer.error;
      throw error;
    }
    return answer.result;
  };
});

const machine = new StateMachine(scenario.definition, { validationOptions: { checkArn: false } });
const execution = machine.run(scenario.input ?? {}, {
  overrides: { taskResourceLocalHandlers: handlers, waitTimeOverrides: waits, retryIntervalOverrides: retryIntervals },
  context: scenario.context ?? {},
});
const states = [];
const events = [];
const consumed = (async () => {
  for await (const event of execution.eventLogs) {
    if (event.type === "StateEntered") states.push(event.state.name);
    if (event.type === "StateRetried" || event.type === "StateCaught" || event.type === "StateFailed") {
      events.push({ type: event.type, state: event.state.name, error: event.Error ?? null });
    }
  }
})();
const report = { status: "SUCCEEDED", output: null, error: null, cause: null };
try {
  report.output = await execution.result;
} catch (failure) {
  const caught = failure.cause ?? failure;
  report.status = "FAILED";
  report.error = caught.name;
  report.cause = typeof caught.message === "string" ? caught.message : JSON.stringify(caught.message);
}
await consumed;
const unused = Object.fromEntries(Object.entries(answers).filter(([, queue]) => queue.length > 0));
process.stdout.write(JSON.stringify({ ...report, states, events, task_inputs: taskInputs, unused_answers: unused }));
