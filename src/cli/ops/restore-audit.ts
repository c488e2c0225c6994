// Audit-chain verification after `maos restore`: a restored database must still prove that its
// audit log was not altered. Kept apart so restore works the same while the audit module evolves.
import type { Config } from '../../config/schema.ts';

export interface RestoredAuditResult {
  status: 'verified' | 'failed' | 'skipped';
  message: string;
}

/** Verifies the audit hash chain of the restored database, when this build has an audit verifier. */
export async function verifyRestoredAudit(_config: Readonly<Config>): Promise<RestoredAuditResult> {
  return {
    status: 'skipped',
    message: 'this build has no audit chain verifier; run `maos audit verify` when available',
  };
}
