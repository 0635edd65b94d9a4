// A front-end's use of the API through the types openapi-typescript generates from
// /openapi.json (written next to this file as api.d.ts). `tsc` checks every call against the
// generated operations; node then runs it against a live server:
//
//   node calls.js <base URL> <user id>
//
// It stops with an error at the first answer that is not what the contract says, and prints
// what it saw as one JSON line for the test to check again.
import type { components, operations } from "./api";

// Node's own globals, without a dependency on @types/node.
declare const process: { argv: string[] };

type Task = components["schemas"]["TaskPublic"];
type Problem = components["schemas"]["Problem"];
type PathOf<Name extends keyof operations> = operations[Name]["parameters"]["path"];
type BodyOf<Name extends keyof operations> = operations[Name] extends {
  requestBody: { content: { "application/json": infer Body } };
}
  ? Body
  : never;
type AnswerOf<Name extends keyof operations, Status extends number> = operations[Name]["responses"] extends {
  [status in Status]: { content: { "application/json": infer Answer } };
}
  ? Answer
  : never;

const [baseUrl, userId] = process.argv.slice(2);

function check(condition: boolean, what: string, seen?: unknown): asserts condition {
  if (!condition) throw new Error(`${what}: ${JSON.stringify(seen)}`);
}

async function send(method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(baseUrl + path, {
    method,
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function expect<Answer>(response: Response, status: number): Promise<Answer> {
  const text = await response.text();
  check(response.status === status, `expected ${status}, got ${response.status}`, text);
  return (text === "" ? undefined : JSON.parse(text)) as Answer;
}

async function expectProblem(response: Response, status: number): Promise<Problem> {
  check(response.headers.get("content-type") === "application/problem+json", "a problem document", status);
  const problem = await expect<Problem>(response, status);
  check(problem.status === status && problem.title !== "" && problem.detail !== "", "its fields", problem);
  return problem;
}

// One typed function per operation, named after its operationId.
const tasksPath = (path: PathOf<"createTask">) => `/api/${path.user_id}/tasks`;
const taskPath = (path: PathOf<"getTask">) => `/api/${path.user_id}/tasks/${path.task_id}`;

const createTask = (path: PathOf<"createTask">, body: BodyOf<"createTask">) => send("POST", tasksPath(path), body);
const listTasks = (path: PathOf<"listTasks">, query: NonNullable<operations["listTasks"]["parameters"]["query"]>) => {
  const search = new URLSearchParams(Object.entries(query).map(([name, value]) => [name, String(value)]));
  return send("GET", `${tasksPath(path)}?${search}`);
};
const getTask = (path: PathOf<"getTask">) => send("GET", taskPath(path));
const replaceTask = (path: PathOf<"replaceTask">, body: BodyOf<"replaceTask">) => send("PUT", taskPath(path), body);
const completeTask = (path: PathOf<"completeTask">, body: BodyOf<"completeTask">) =>
  send("PATCH", `${taskPath(path)}/complete`, body);
const deleteTask = (path: PathOf<"deleteTask">) => send("DELETE", taskPath(path));

// Never called: tsc must refuse each marked line, which proves the generated types are precise.
export function refusedByTheTypes(task: Task): void {
  // @ts-expect-error completed is a boolean
  completeTask({ user_id: userId, task_id: task.id }, { completed: "yes" });
  // @ts-expect-error a task needs a title
  createTask({ user_id: userId }, { description: "no title" });
  // @ts-expect-error sort takes only the listed keys
  listTasks({ user_id: userId }, { sort: "priority" });
  // @ts-expect-error a task's id is a string
  const id: number = task.id;
  // @ts-expect-error the health answer says "ok"
  const status: AnswerOf<"health", 200>["status"] = "fine";
}

async function main(): Promise<void> {
  const owner = { user_id: userId };
  const created = await createTask(owner, { title: "  Buy milk  ", description: "2 litres" });
  const task = await expect<AnswerOf<"createTask", 201>>(created, 201);
  check(task.title === "Buy milk" && task.description === "2 litres" && !task.completed, "the new task", task);
  check(task.user_id === userId && task.created_at === task.updated_at, "its owner and times", task);
  check(created.headers.get("location") === `/api/${userId}/tasks/${task.id}`, "Location", created.headers.get("location"));
  const path = { user_id: userId, task_id: task.id };

  await expect<Task>(await createTask(owner, { title: "Walk the dog" }), 201);
  const listing = await listTasks(owner, { sort: "title", limit: 1 });
  const page = await expect<AnswerOf<"listTasks", 200>>(listing, 200);
  check(page.length === 1 && page[0].id === task.id, "the first page sorted by title", page);
  check(listing.headers.get("x-total-count") === "2", "X-Total-Count", listing.headers.get("x-total-count"));

  const read = await expect<AnswerOf<"getTask", 200>>(await getTask(path), 200);
  check(JSON.stringify(read) === JSON.stringify(task), "the task read back", read);

  const replaced = await expect<AnswerOf<"replaceTask", 200>>(await replaceTask(path, { title: "Buy oat milk" }), 200);
  check(replaced.title === "Buy oat milk" && replaced.description === null, "the replaced task", replaced);
  check(replaced.updated_at > task.updated_at && !replaced.completed, "PUT moves updated_at only", replaced);

  const done = await expect<AnswerOf<"completeTask", 200>>(await completeTask(path, { completed: true }), 200);
  check(done.completed && done.title === "Buy oat milk", "the completed task", done);

  const deleted = await expect<undefined>(await deleteTask(path), 204);
  const gone = await expectProblem(await getTask(path), 404);
  const refused = await expectProblem(await createTask(owner, { title: "   " }), 400);
  check((refused.errors ?? []).some((error) => error.loc.join("/") === "body/title"), "the field named", refused);

  const health = await expect<AnswerOf<"health", 200>>(await send("GET", "/health"), 200);
  console.log(JSON.stringify({ task, page, read, replaced, done, deleted: deleted ?? null, gone, refused, health }));
}

main().catch((error: unknown) => {
  console.error(error);
  throw error;
});
