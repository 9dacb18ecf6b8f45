/** The ACL decision: Consul's precedence (exact name over prefix, longer prefix first, deny over grants). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AclIndex,
  globalManagementPolicy,
  hashAclSecret,
  newAclSecret,
  type AclPolicy,
} from '../../src/bridge/index.ts';

function indexWith(policies: AclPolicy[], tokenPolicies: string[]): { index: AclIndex; secret: string } {
  const secret = newAclSecret();
  const token = { accessor: 't1', secretHash: hashAclSecret(secret), policies: tokenPolicies, createdAt: 0 };
  return { index: new AclIndex({ version: 1, tokens: [token], policies }), secret };
}

test('an exact service rule beats a prefix rule, and a longer prefix beats a shorter one', () => {
  const { index, secret } = indexWith(
    [
      {
        name: 'p',
        rules: [
          { prefix: '', access: 'read' },
          { prefix: 'bill', access: 'write' },
          { prefix: 'billing-', access: 'deny' },
          { service: 'billing-eu', access: 'write' },
        ],
      },
    ],
    ['p'],
  );
  const token = index.resolve(secret);
  assert.ok(token);
  assert.equal(token.accessTo('search'), 'read');
  assert.equal(token.accessTo('billing'), 'write');
  assert.equal(token.accessTo('billing-us'), 'deny');
  assert.equal(token.accessTo('billing-eu'), 'write');
  assert.ok(token.allows({ access: 'read', service: 'search' }));
  assert.ok(!token.allows({ access: 'write', service: 'search' }));
  assert.ok(!token.allows({ access: 'read', service: 'billing-us' }));
  assert.ok(!token.allows({ access: 'admin' }));
});

test('deny in one policy beats write in another for the same rule; unknown secrets and policies grant nothing', () => {
  const { index, secret } = indexWith(
    [
      { name: 'a', rules: [{ service: 'db', access: 'write' }] },
      { name: 'b', rules: [{ service: 'db', access: 'deny' }] },
    ],
    ['a', 'b', 'gone'],
  );
  assert.equal(index.resolve(secret)?.accessTo('db'), 'deny');
  assert.equal(index.resolve(newAclSecret()), undefined);
  // Reads nothing at all: an unfiltered stream of it has nothing left to carry (it ends on an ACL change).
  assert.equal(index.resolve(secret)?.readsAny(), false);
  const only = indexWith([{ name: 'p', rules: [{ prefix: 'x', access: 'read' }] }], ['p']);
  assert.equal(only.index.resolve(only.secret)?.readsAny(), true);
  const none = indexWith([], ['gone']);
  assert.equal(none.index.resolve(none.secret)?.readsAny(), false);
});

test('global-management writes every service and is admin; the store keeps only the hash', () => {
  const { index, secret } = indexWith([globalManagementPolicy()], ['global-management']);
  const token = index.resolve(secret);
  assert.ok(token?.admin && token.allows({ access: 'write', service: 'anything' }));
  assert.notEqual(index.token('t1')?.secretHash, secret);
  assert.match(index.token('t1')?.secretHash ?? '', /^[0-9a-f]{64}$/);
});
