/**
 * The first admin token of a store. The first time a leader takes over a store with no ACL state (version 0) it
 * commits the `global-management` policy and one token holding it, at ACL version 1, in one store transaction.
 * The secret is the content of `--bootstrap-token-file`, or else generated and logged once (a warn line with the
 * accessor and the secret). A store at version 1 or more is never bootstrapped again, so the secret is never shown
 * again, by this leader or any other.
 *
 * A bootstrap commit whose outcome is unknown (etcd did not answer) is tried again with the same accessor and
 * secret; if the next take-over finds that token stored, it did land, and its secret is shown then.
 */
import { readFileSync } from 'node:fs';
import { newAclAccessor, newAclSecret, StartupError, type AclState, type Logger } from '../bridge/index.ts';
import { bootstrapChange } from './acl-registry.ts';
import type { RegistryStore } from './store-api.ts';

/** Shorter secrets from a file are refused: the token holds every right. */
export const MIN_BOOTSTRAP_SECRET_LENGTH = 16;
export const BOOTSTRAP_MESSAGE = 'ACL bootstrap token created; keep it, it is not shown again';

/** The secret in `--bootstrap-token-file` (trimmed); a missing file or a short secret is refused in one line. */
export function readBootstrapSecret(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new StartupError(`--bootstrap-token-file ${file}: ${(err as Error).message}`, { cause: err });
  }
  const secret = text.trim();
  if (secret.length < MIN_BOOTSTRAP_SECRET_LENGTH)
    throw new StartupError(
      `--bootstrap-token-file ${file}: the token is ${secret.length} characters long; at least ${MIN_BOOTSTRAP_SECRET_LENGTH} are needed`,
    );
  return secret;
}

export class AclBootstrap {
  readonly #secret: string | undefined;
  readonly #file: string | undefined;
  readonly #log: Logger;
  /** A bootstrap sent to the store whose outcome is not known yet. */
  #pending: { accessor: string; secret: string } | undefined;

  /** `file`: `--bootstrap-token-file`, read at once so a bad file stops the start. */
  constructor(opts: { file?: string; log: Logger }) {
    this.#file = opts.file;
    this.#secret = opts.file === undefined ? undefined : readBootstrapSecret(opts.file);
    this.#log = opts.log;
  }

  /** The ACL state to start a term from: `acl` itself, or, for a store without ACLs, the bootstrap once stored. */
  async ensure(store: RegistryStore, acl: AclState, now = Date.now()): Promise<AclState> {
    const pending = this.#pending;
    if (acl.version > 0) {
      // An earlier try whose answer was lost did land: this is the first time it can be shown.
      if (pending && acl.tokens.some((t) => t.accessor === pending.accessor)) this.#announce(pending);
      this.#pending = undefined;
      return acl;
    }
    const attempt = pending ?? { accessor: newAclAccessor(), secret: this.#secret ?? newAclSecret() };
    this.#pending = attempt;
    const change = bootstrapChange(attempt.secret, now, attempt.accessor);
    await store.commitAcl(change);
    this.#pending = undefined;
    this.#announce(attempt);
    return { version: change.version, tokens: change.putTokens, policies: change.putPolicies };
  }

  #announce(made: { accessor: string; secret: string }): void {
    if (this.#file === undefined) this.#log.warn({ accessor: made.accessor, secret: made.secret }, BOOTSTRAP_MESSAGE);
    else
      this.#log.warn(
        { accessor: made.accessor, file: this.#file },
        'ACL bootstrap token created with the secret of --bootstrap-token-file',
      );
  }
}
