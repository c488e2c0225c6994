// Tenant secrets (e.g. provider API keys) stored encrypted in `tenant_secrets`. Values go in and
// are read back only by server code; no API returns them. Rotation re-wraps every stored value.

import { AppError } from '../errors/app-error.ts';
import { decryptSecret, encryptSecret, type KekRing, readEnvelopeKekId, rewrapSecret } from './secrets.ts';
import type { SecurityDb } from './security-tables.ts';

/** Kind of secret; part of the AAD so a value cannot be replayed as another kind. */
const SECRET_TYPE = 'tenant_secret';

/**
 * Passes of a re-wrap over rows still on an old KEK: another one only when a row changed under the
 * previous pass (stored again by a server), which a pass or two settles.
 */
const MAX_REWRAP_PASSES = 5;

/** Unreadable secrets a re-wrap's error names (tenant and name, never the value); the rest are counted. */
const MAX_NAMED_UNREADABLE = 20;

export interface SecretStore {
  /** Stores (or replaces) a tenant's secret. */
  put(tenantId: string, name: string, value: string): Promise<void>;
  /** The decrypted value, or null when absent. */
  get(tenantId: string, name: string): Promise<string | null>;
  /** Names only, never values. */
  listNames(tenantId: string): Promise<string[]>;
  delete(tenantId: string, name: string): Promise<boolean>;
  /**
   * Re-wraps every value not yet under the active KEK; returns how many changed. Throws
   * SECRET_UNREADABLE naming the values it could not read, after re-wrapping all the others, and
   * CONFLICT naming those still being stored again after its last pass.
   */
  rewrapAll(): Promise<number>;
}

/** A secret store over the database with the given keyring. */
export function createSecretStore(db: SecurityDb, ring: KekRing, now = () => new Date()): SecretStore {
  const context = (tenantId: string, name: string) => ({ tenantId, type: SECRET_TYPE, id: name });
  return {
    async put(tenantId, name, value) {
      const ciphertext = encryptSecret(ring, value, context(tenantId, name));
      const at = now().toISOString();
      await db
        .insertInto('tenant_secrets')
        .values({
          tenant_id: tenantId,
          name,
          ciphertext,
          kek_id: ring.activeId,
          created_at: at,
          updated_at: at,
        })
        .onConflict((oc) =>
          oc
            .columns(['tenant_id', 'name'])
            .doUpdateSet({ ciphertext, kek_id: ring.activeId, updated_at: at }),
        )
        .execute();
    },
    async get(tenantId, name) {
      const row = await db
        .selectFrom('tenant_secrets')
        .select('ciphertext')
        .where('tenant_id', '=', tenantId)
        .where('name', '=', name)
        .executeTakeFirst();
      return row ? decryptSecret(ring, row.ciphertext, context(tenantId, name)) : null;
    },
    async listNames(tenantId) {
      const rows = await db
        .selectFrom('tenant_secrets')
        .select('name')
        .where('tenant_id', '=', tenantId)
        .orderBy('name')
        .execute();
      return rows.map((row) => row.name);
    },
    async delete(tenantId, name) {
      const result = await db
        .deleteFrom('tenant_secrets')
        .where('tenant_id', '=', tenantId)
        .where('name', '=', name)
        .executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    },
    async rewrapAll() {
      // Each row is written only if it still holds the value read (a compare-and-set): a value a
      // server stores meanwhile (a tenant's new key, a webhook secret's rotation) is never replaced
      // by the re-wrapped old one. Rows changed under the re-wrap are read again in another pass.
      // A row that cannot be read (its KEK already gone) is skipped, not the end of the run: the
      // others still move to the active KEK, and the error names the ones left.
      let rewrapped = 0;
      // Of the last pass only: each pass reads every row still on an old KEK, and one unreadable
      // before may since have been stored anew (or removed) and be fine.
      const unreadable = new Map<string, string>();
      // Rows stored again between the read and the write of the last pass: still maybe on an old KEK.
      const changing: string[] = [];
      for (let pass = 0; pass < MAX_REWRAP_PASSES; pass += 1) {
        unreadable.clear();
        changing.length = 0;
        const rows = await db
          .selectFrom('tenant_secrets')
          .select(['tenant_id', 'name', 'ciphertext'])
          .where('kek_id', '!=', ring.activeId)
          .execute();
        for (const row of rows) {
          const where = `tenant ${row.tenant_id}, ${row.name}`;
          let ciphertext: string;
          try {
            ciphertext = rewrapSecret(ring, row.ciphertext, context(row.tenant_id, row.name));
          } catch (error) {
            if (!(error instanceof AppError) || error.code !== 'SECRET_UNREADABLE') throw error;
            unreadable.set(where, error.message.replace(/^Stored secret cannot be decrypted: /, ''));
            continue;
          }
          const result = await db
            .updateTable('tenant_secrets')
            // The value is unchanged: updated_at (when it was last stored) stays.
            .set({ ciphertext, kek_id: readEnvelopeKekId(ciphertext) })
            .where('tenant_id', '=', row.tenant_id)
            .where('name', '=', row.name)
            .where('ciphertext', '=', row.ciphertext)
            .executeTakeFirst();
          if (Number(result.numUpdatedRows) > 0) rewrapped += 1;
          else changing.push(where);
        }
        if (changing.length === 0) break;
      }
      if (unreadable.size > 0) {
        const named = [...unreadable]
          .slice(0, MAX_NAMED_UNREADABLE)
          .map(([where, reason]) => `${where}: ${reason}`);
        const more = unreadable.size > named.length ? `; and ${unreadable.size - named.length} more` : '';
        throw new AppError(
          'SECRET_UNREADABLE',
          `re-wrapped ${rewrapped} stored secret(s); ${unreadable.size} cannot be read with secrets.kekRing and stay as they are: ${named.join('; ')}${more}`,
        );
      }
      if (changing.length > 0) {
        // Saying it succeeded would tell the operator the old KEKs can go while these may need them.
        throw new AppError(
          'CONFLICT',
          `re-wrapped ${rewrapped} stored secret(s); ${changing.length} kept being stored again while re-wrapped (${MAX_REWRAP_PASSES} passes) and may still be under an old KEK: ${changing.slice(0, MAX_NAMED_UNREADABLE).join('; ')}${changing.length > MAX_NAMED_UNREADABLE ? `; and ${changing.length - MAX_NAMED_UNREADABLE} more` : ''}. Run it again once every server has the new keyring`,
        );
      }
      return rewrapped;
    },
  };
}
