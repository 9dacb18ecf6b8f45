/**
 * Role configuration is validated once at start: every wrong field is named in one error, defaults are filled
 * in, and the result is frozen so nothing changes it behind the role's back.
 */
import type { Static, TSchema } from 'typebox';
import { Compile } from 'typebox/compile';

export class ConfigError extends Error {
  readonly code = 'SB_INVALID_CONFIG';
  readonly problems: string[];
  constructor(role: string, problems: string[]) {
    super(`invalid ${role} configuration: ${problems.join('; ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export function validateConfig<S extends TSchema>(
  role: string,
  schema: S,
  defaults: object,
  input: object,
): Readonly<Static<S>> {
  const merged: Record<string, unknown> = { ...defaults };
  for (const [k, v] of Object.entries(input)) if (v !== undefined) merged[k] = v;
  const validator = Compile(schema);
  if (!validator.Check(merged)) {
    const problems = [...validator.Errors(merged)]
      .filter((e) => e.keyword !== 'anyOf')
      .map((e) => {
        const field = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
        const missing = (e.params as { requiredProperties?: string[] }).requiredProperties;
        if (e.keyword === 'required' && missing) return `${missing.join(', ')}: is required`;
        if (e.keyword === 'additionalProperties') {
          const extra = (e.params as { additionalProperties?: string[] }).additionalProperties;
          return `${extra?.join(', ') ?? field}: is not a known option`;
        }
        return `${field || '(root)'}: ${e.message}`;
      });
    throw new ConfigError(role, [...new Set(problems)]);
  }
  return Object.freeze(merged);
}
