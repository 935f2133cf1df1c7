// Counting the operator's API requests with the API server's own audit log: the controller and
// the agents run with their ServiceAccounts' tokens (deploy/rbac), so every request they make
// is attributed to them. Status patches of APNodeState are logged with their bodies, so a
// heartbeat (a patch of heartbeatTime only) can be told from a real status change.
import * as fs from 'node:fs';

export const CONTROLLER_USER = 'system:serviceaccount:apqn-controller:apqn-controller';
export const AGENT_USER = 'system:serviceaccount:apqn-system:apqn-agent';

export function auditPolicy(): string {
  const users = JSON.stringify([CONTROLLER_USER, AGENT_USER]);
  return [
    'apiVersion: audit.k8s.io/v1',
    'kind: Policy',
    'omitStages: ["RequestReceived", "ResponseStarted"]',
    'rules:',
    `  - level: Request`,
    `    users: ${users}`,
    `    verbs: ["patch"]`,
    `    resources: [{ group: "ap.s390x.io", resources: ["apnodestates/status"] }]`,
    `  - level: Metadata`,
    `    users: ${users}`,
    // The user's creates too, for the timeline (APQN_BENCH_KEEP): not counted as the operator's.
    `  - level: Metadata`,
    `    verbs: ["create"]`,
    `    resources: [{ group: "ap.s390x.io", resources: ["apqnreservations"] }]`,
    '  - level: None',
    '',
  ].join('\n');
}

export interface AuditEvent {
  verb: string;
  user: { username: string };
  objectRef?: { resource?: string; subresource?: string; namespace?: string; name?: string; apiGroup?: string };
  responseStatus?: { code?: number };
  requestObject?: unknown;
  stageTimestamp: string;
}

const WRITE_VERBS = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);

/** Reads the audit log from a byte offset: the events, and the offset to read on from. */
export function readAudit(file: string, offset: number): { events: AuditEvent[]; next: number } {
  let text: string;
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const buffer = Buffer.alloc(size - offset);
      fs.readSync(fd, buffer, 0, buffer.length, offset);
      text = buffer.toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return { events: [], next: offset };
  }
  const end = text.lastIndexOf('\n') + 1; // a line being written is read next time
  const events = text
    .slice(0, end)
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditEvent);
  return { events, next: offset + Buffer.byteLength(text.slice(0, end)) };
}

/** Where the log ends now (after its last complete line): an offset for readAudit, without reading it all. */
export function auditEnd(file: string): number {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return 0;
  }
  try {
    let end = fs.fstatSync(fd).size;
    const chunk = Buffer.alloc(64 * 1024);
    while (end > 0) {
      const from = Math.max(0, end - chunk.length);
      const n = fs.readSync(fd, chunk, 0, end - from, from);
      const nl = chunk.subarray(0, n).lastIndexOf(0x0a);
      if (nl >= 0) return from + nl + 1;
      end = from;
    }
    return 0;
  } finally {
    fs.closeSync(fd);
  }
}

/** A status patch that sets nothing but heartbeatTime. */
function isHeartbeat(e: AuditEvent): boolean {
  const body = e.requestObject as { status?: Record<string, unknown> } | undefined;
  const keys = Object.keys(body?.status ?? {});
  return keys.length === 1 && keys[0] === 'heartbeatTime';
}

export interface WriteCounts {
  /** Writes to the run's reservations (main resource: finalizer patches). */
  reservation: number;
  reservationStatus: number;
  nodeSpec: number;
  nodeStatus: number;
  heartbeats: number;
  events: number;
  /** DRA ResourceSlices of the run's nodes (the controller publishes Ready reservations as devices). */
  slices: number;
  /** Writes to anything else of the run (other kinds in its namespace), so none goes uncounted. */
  other: number;
  /** Writes by the operator's accounts to objects that are not the run's (not in any total: shown so that none hides). */
  elsewhere: number;
  /** Writes the server refused (409 conflicts and other errors), included above. */
  refused: number;
  /** Every request by the operator's accounts that touched the run's objects, reads too (not watches). */
  requests: number;
}

/** The operator's writes to one run's objects: its namespace and its nodes' APNodeStates. */
export function countWrites(events: readonly AuditEvent[], namespace: string, nodes: ReadonlySet<string>): WriteCounts {
  const c: WriteCounts = { reservation: 0, reservationStatus: 0, nodeSpec: 0, nodeStatus: 0, heartbeats: 0, events: 0, slices: 0, other: 0, elsewhere: 0, refused: 0, requests: 0 };
  const ofRunNode = (name: string) => [...nodes].some((n) => name.includes(n));
  for (const e of events) {
    const ref = e.objectRef ?? {};
    const ours =
      ref.namespace === namespace ||
      (ref.resource === 'apnodestates' && nodes.has(ref.name ?? '')) ||
      (ref.resource === 'resourceslices' && ofRunNode(ref.name ?? ''));
    if (!ours) {
      if (WRITE_VERBS.has(e.verb)) c.elsewhere++;
      continue;
    }
    if (e.verb === 'watch') continue;
    c.requests++;
    if (!WRITE_VERBS.has(e.verb)) continue;
    if ((e.responseStatus?.code ?? 200) >= 300) c.refused++;
    if (ref.resource === 'apqnreservations') {
      if (ref.subresource === 'status') c.reservationStatus++;
      else c.reservation++;
    } else if (ref.resource === 'apnodestates') {
      if (ref.subresource === 'status') {
        if (isHeartbeat(e)) c.heartbeats++;
        else c.nodeStatus++;
      } else c.nodeSpec++;
    } else if (ref.resource === 'events') c.events++;
    else if (ref.resource === 'resourceslices') c.slices++;
    else c.other++;
  }
  return c;
}

/** Every write of the happy path: all but heartbeats (refused ones included, as the server had to answer them). */
export function totalWrites(c: WriteCounts): number {
  return c.reservation + c.reservationStatus + c.nodeSpec + c.nodeStatus + c.events + c.slices + c.other;
}

export interface WritesByActor {
  all: WriteCounts;
  /** By the controller's ServiceAccount. */
  controller: WriteCounts;
  /** By the agents' ServiceAccount (every node's agent uses the same one). */
  agents: WriteCounts;
}

/** countWrites over all the operator's requests, and split by who made them (the audit event's username). */
export function countWritesByActor(events: readonly AuditEvent[], namespace: string, nodes: ReadonlySet<string>): WritesByActor {
  const by = (user: string) => countWrites(events.filter((e) => e.user?.username === user), namespace, nodes);
  const operator = events.filter((e) => e.user?.username === CONTROLLER_USER || e.user?.username === AGENT_USER);
  return { all: countWrites(operator, namespace, nodes), controller: by(CONTROLLER_USER), agents: by(AGENT_USER) };
}
