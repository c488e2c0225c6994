// Provider credentials a tenant stores over the API (its own API key, and for OpenAI-compatible
// providers its own base URL), kept encrypted in the tenant secret store. Only server code reads
// them back (the LLM runtime); no API returns the key.
import type { Config } from '../config/schema.ts';
import { AppError } from '../errors/app-error.ts';
import { blockedPortReason, fetchBlockedPort } from '../errors/fetch-failure.ts';
import { createSecretStore, type SecretStore } from './secret-store.ts';
import { parseKekRing } from './secrets.ts';
import type { SecurityDb } from './security-tables.ts';
import { assertPublicUrl, type SsrfPolicy } from './ssrf-guard.ts';

/** Secret names of provider credentials: `provider:<name>` in `tenant_secrets`. */
const NAME_PREFIX = 'provider:';

/** A tenant's credential for one provider, as the LLM runtime uses it. */
export interface TenantProviderCredential {
  apiKey: string;
  /** Only for `openai-compatible` providers; null = the operator's base URL. */
  baseURL: string | null;
}

/** What a listing shows about one configured provider: never the key. */
export interface ProviderCredentialSummary {
  name: string;
  type: string;
  /** Whether the tenant stored its own credential (else the server's key is used). */
  tenantCredential: boolean;
  updatedAt: string | null;
}

export interface TenantProviderCredentials {
  /** Stores (or replaces) the credential; refuses unknown providers and internal base URLs. */
  put(
    tenantId: string,
    provider: string,
    input: { apiKey: string; baseURL?: string | undefined },
  ): Promise<{ baseURL: string | null; updatedAt: string }>;
  /** The decrypted credential, or null when the tenant has none for this provider. */
  get(tenantId: string, provider: string): Promise<TenantProviderCredential | null>;
  /** Every configured provider with whether the tenant has a credential for it. */
  list(tenantId: string): Promise<ProviderCredentialSummary[]>;
  /** Removes the tenant's credential (also of a provider no longer configured); NOT_FOUND when there is none. */
  delete(tenantId: string, provider: string): Promise<void>;
  /** The SSRF policy for tenant-set base URLs (also applied on every call the runtime makes). */
  readonly ssrf: SsrfPolicy;
}

export interface TenantProviderCredentialsOptions {
  db: SecurityDb;
  /** `secrets.kekRing`; unset = credentials cannot be stored (PUT answers 409). */
  kekRing: string | undefined;
  /** Configured providers (name → type); tenants override credentials of these only. */
  providers: Readonly<Record<string, { type: string }>>;
  ssrf: SsrfPolicy;
  now?: () => Date;
}

interface StoredValue {
  apiKey: string;
  baseURL: string | null;
}

/** Builds the credential service from the server config. */
export function createTenantProviderCredentialsFromConfig(
  db: SecurityDb,
  config: Pick<Config, 'providers' | 'secrets' | 'ssrf'>,
  /** `config.ssrf` with the egress proxy (security/egress-proxy.ts), when one is configured. */
  ssrf: SsrfPolicy = config.ssrf,
): TenantProviderCredentials {
  return createTenantProviderCredentials({
    db,
    kekRing: config.secrets.kekRing,
    providers: config.providers,
    ssrf,
  });
}

/** Creates the service over the tenant secret store. */
export function createTenantProviderCredentials(
  options: TenantProviderCredentialsOptions,
): TenantProviderCredentials {
  const { db, providers, ssrf } = options;
  // Parsed once at start: a bad keyring is a startup error, not a per-request one.
  const store: SecretStore | null = options.kekRing
    ? createSecretStore(db, parseKekRing(options.kekRing), options.now)
    : null;

  function providerType(name: string): string {
    const type = providers[name]?.type;
    if (type === undefined) throw new AppError('NOT_FOUND', `Provider '${name}' is not configured`);
    return type;
  }

  async function readUpdatedAt(tenantId: string, provider: string): Promise<string | null> {
    const row = await db
      .selectFrom('tenant_secrets')
      .select('updated_at')
      .where('tenant_id', '=', tenantId)
      .where('name', '=', `${NAME_PREFIX}${provider}`)
      .executeTakeFirst();
    return row?.updated_at ?? null;
  }

  return {
    ssrf,
    async put(tenantId, provider, input) {
      const type = providerType(provider);
      if (!store) {
        throw new AppError(
          'INVALID_STATE',
          'This server cannot store tenant credentials: the operator has not configured secrets.kekRing',
        );
      }
      let baseURL: string | null = null;
      if (input.baseURL !== undefined) {
        if (type !== 'openai-compatible') {
          throw new AppError(
            'VALIDATION_FAILED',
            `baseURL can only be set for openai-compatible providers ('${provider}' is ${type})`,
          );
        }
        // fetch would fail every call to it with a bare `fetch failed`, whatever listens there.
        const port = fetchBlockedPort(input.baseURL);
        if (port !== undefined) {
          throw new AppError(
            'VALIDATION_FAILED',
            `baseURL of provider '${provider}': ${blockedPortReason(port)}`,
          );
        }
        baseURL = (await assertPublicUrl(input.baseURL, ssrf)).toString().replace(/\/$/, '');
      }
      const value: StoredValue = { apiKey: input.apiKey, baseURL };
      await store.put(tenantId, `${NAME_PREFIX}${provider}`, JSON.stringify(value));
      return { baseURL, updatedAt: (await readUpdatedAt(tenantId, provider)) ?? '' };
    },
    async get(tenantId, provider) {
      if (providers[provider] === undefined) return null;
      if (!store) {
        // A credential stored while the server had a keyring: falling back to the server's key
        // would send the tenant's calls (meant for its own account, maybe its own model server)
        // to the operator's provider. They fail instead, as with a KEK missing from the ring.
        if ((await readUpdatedAt(tenantId, provider)) === null) return null;
        throw new AppError(
          'SECRET_UNREADABLE',
          `Stored secret cannot be decrypted: the tenant's credential for provider '${provider}' is stored, and this server has no secrets.kekRing`,
        );
      }
      const text = await store.get(tenantId, `${NAME_PREFIX}${provider}`);
      if (text === null) return null;
      const value = JSON.parse(text) as StoredValue;
      return { apiKey: value.apiKey, baseURL: value.baseURL };
    },
    async list(tenantId) {
      const rows = await db
        .selectFrom('tenant_secrets')
        .select(['name', 'updated_at'])
        .where('tenant_id', '=', tenantId)
        .where('name', 'like', `${NAME_PREFIX}%`)
        .execute();
      const updated = new Map(rows.map((row) => [row.name.slice(NAME_PREFIX.length), row.updated_at]));
      return Object.entries(providers)
        .map(([name, provider]) => ({
          name,
          type: provider.type,
          tenantCredential: updated.has(name),
          updatedAt: updated.get(name) ?? null,
        }))
        .sort((a, b) => a.name.localeCompare(b.name));
    },
    async delete(tenantId, provider) {
      // Also for a provider the operator has since removed from the config: the tenant's key stays
      // stored (and would be used again under that name) until its owner removes it.
      // Also without a keyring: removing needs no decryption.
      const removed =
        Number(
          (
            await db
              .deleteFrom('tenant_secrets')
              .where('tenant_id', '=', tenantId)
              .where('name', '=', `${NAME_PREFIX}${provider}`)
              .executeTakeFirst()
          ).numDeletedRows,
        ) > 0;
      if (!removed) {
        providerType(provider);
        throw new AppError('NOT_FOUND', `No tenant credential is stored for provider '${provider}'`);
      }
    },
  };
}
