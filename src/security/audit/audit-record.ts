// The audit record: who did what to which resource, with what outcome; and the hash-chain step
// h_i = SHA-256(h_{i-1} ‖ JCS(record)) that links each record to the one before.
import { createHash } from 'node:crypto';
import { toStorableText } from '../../store/storable-text.ts';
import { canonicalize } from './canonical-json.ts';

/** The hash before the first record: 32 zero bytes, hex. */
export const GENESIS_HASH = '0'.repeat(64);

export type AuditOutcome = 'success' | 'failure' | 'unknown';

/**
 * Who acted. `tenant` is the organisation (other schemas' `org_id`); `client_id` the OAuth client
 * that obtained an OIDC token (its `client_id`, else `azp`, claim) or the API key's id, as
 * `GET /v1/me` shows it; `auth_method` says how they proved it.
 */
export interface AuditActor {
  type: 'user' | 'service' | 'anonymous' | 'system';
  id: string | null;
  tenant: string | null;
  client_id: string | null;
  ip: string | null;
  user_agent: string | null;
  auth_method: 'oidc' | 'apikey' | 'none' | 'local' | null;
}

/** An actor as a writer supplies it: `client_id` may be left out (null). */
export type AuditActorInput = Omit<AuditActor, 'client_id'> & { client_id?: string | null };

/** The MAOS process that wrote a record (CADF's observer). */
export interface AuditObserver {
  service: string;
  version: string;
  /**
   * Its host name, a pseudonym of it (`pseudonym:…`), or null, as `audit.observerNode` was when the
   * record was written (observer-node.ts).
   */
  node: string | null;
}

/** What was acted on. */
export interface AuditTarget {
  type: string;
  id: string | null;
  tenant: string | null;
}

/**
 * Target types earlier versions wrote under another name: that name → the current one. Stored
 * records keep the name they were hashed with; a filter on either finds both (targetTypeNames).
 * `api_key`: API keys created or revoked with the CLI, before it wrote `keys` as the HTTP routes do.
 */
export const RENAMED_TARGET_TYPES: ReadonlyMap<string, string> = new Map([['api_key', 'keys']]);

/** The names records of `type`'s target type may carry: the current one, then its earlier ones. */
export function targetTypeNames(type: string): string[] {
  const current = RENAMED_TARGET_TYPES.get(type) ?? type;
  const earlier = [...RENAMED_TARGET_TYPES].filter(([, now]) => now === current).map(([old]) => old);
  return [current, ...earlier];
}

/** What a caller supplies; id, seq and time are assigned by the log. */
export interface AuditEventInput {
  /** The permission checked, or a name of that form, e.g. `sessions:create`, `tenants:purge`. */
  action: string;
  actor: AuditActorInput;
  target?: AuditTarget | null;
  outcome: AuditOutcome;
  reason?: string | null;
  request_id?: string | null;
  trace_id?: string | null;
}

/** A stored record, exactly as hashed (canonical JSON of this object). */
export interface AuditRecord {
  seq: number;
  id: string;
  time: string;
  action: string;
  actor: AuditActor;
  target: AuditTarget | null;
  outcome: AuditOutcome;
  reason: string | null;
  request_id: string | null;
  trace_id: string | null;
  /** Null only for a record written before observers were recorded (it has none stored). */
  observer: AuditObserver | null;
}

/** The chain hash of a record given the previous hash (both hex). */
export function computeChainHash(prevHash: string, canonicalEvent: string): string {
  return createHash('sha256')
    .update(Buffer.from(prevHash, 'hex'))
    .update(canonicalEvent, 'utf8')
    .digest('hex');
}

/**
 * Every actor field present, null when unknown: an undefined one (the IP of a request whose socket
 * had closed) would be left out of the stored JSON, which readers expect complete.
 */
export function completeActor(actor: AuditActorInput): AuditActor {
  return {
    type: actor.type,
    id: actor.id ?? null,
    tenant: actor.tenant ?? null,
    client_id: actor.client_id ?? null,
    ip: actor.ip ?? null,
    user_agent: actor.user_agent ?? null,
    auth_method: actor.auth_method ?? null,
  };
}

/** Builds the stored record from the input and the log-assigned fields. */
export function buildAuditRecord(
  input: AuditEventInput,
  assigned: { seq: number; id: string; time: string; observer: AuditObserver },
): AuditRecord {
  return {
    seq: assigned.seq,
    id: assigned.id,
    time: assigned.time,
    action: input.action,
    actor: completeActor(input.actor),
    target: input.target ?? null,
    outcome: input.outcome,
    reason: input.reason ?? null,
    request_id: input.request_id ?? null,
    trace_id: input.trace_id ?? null,
    observer: assigned.observer,
  };
}

/**
 * The columns stored next to a record so the log can be listed by them (`GET /v1/audit` filters on
 * them). Not hashed themselves: verification checks that they say what the hashed record says.
 * They hold the text as the store keeps it (U+0000 and unpaired surrogates as U+FFFD, e.g. in the
 * method of a refused MCP call), which the hashed record keeps escaped: compared as given, such a
 * record would read as edited.
 */
export function indexedColumnsOf(record: Pick<AuditRecord, 'actor' | 'target' | 'action' | 'outcome'>): {
  tenant_id: string | null;
  action: string;
  outcome: string;
} {
  return {
    tenant_id: auditRecordTenant(record),
    action: storedText(record.action),
    outcome: storedText(record.outcome),
  };
}

/**
 * The tenant a record belongs to: its actor's, else (an actor of no tenant) its target's, as the
 * store keeps the text. The one rule for the API's listing (the `tenant_id` column) and
 * `maos audit export --tenant`.
 */
export function auditRecordTenant(record: Pick<AuditRecord, 'actor' | 'target'>): string | null {
  const tenant = record.actor?.tenant ?? record.target?.tenant ?? null;
  return tenant === null ? null : storedText(tenant);
}

function storedText(text: string): string {
  return typeof text === 'string' ? toStorableText(text.toWellFormed()) : text;
}

/** Canonical JSON text of a record. */
export function serializeAuditRecord(record: AuditRecord): string {
  return canonicalize(record);
}
