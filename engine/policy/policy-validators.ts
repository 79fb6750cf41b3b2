import { Ajv, type ValidateFunction } from 'ajv';
import { RoutingPolicy } from './routing-schema.ts';
import { IndexKey, IndexPolicy, TablePolicy } from './schema.ts';
import { DefaultsPolicy } from './vacuum-schema.ts';

/**
 * The validators of the policy documents, compiled once, on first use. The build (scripts/build.mjs)
 * replaces this module's compiled JavaScript with ajv's standalone code for the same schemas, so the
 * published CLI neither compiles schemas nor loads ajv's compiler at start (issue 14: ~80 ms of
 * `pgwarden validate`); sources run from a checkout compile them here.
 */
export interface PolicyValidators {
  readonly table: ValidateFunction<TablePolicy>;
  // The parts are validated on their own too, to check what is well-formed in a document that is not.
  readonly index: ValidateFunction<IndexPolicy>;
  readonly key: ValidateFunction<IndexKey>;
  readonly routing: ValidateFunction<RoutingPolicy>;
  readonly defaults: ValidateFunction;
}

/** The schemas by validator name; the build compiles these same ones ahead of time. */
export const POLICY_SCHEMAS = { table: TablePolicy, index: IndexPolicy, key: IndexKey, routing: RoutingPolicy, defaults: DefaultsPolicy } as const;

/** `verbose` gives each error its schema and data, which the plain-English messages need. */
export const AJV_OPTIONS = { allErrors: true, strict: true, verbose: true } as const;

let compiled: PolicyValidators | undefined;

export function policyValidators(): PolicyValidators {
  if (compiled !== undefined) return compiled;
  const ajv = new Ajv(AJV_OPTIONS);
  compiled = {
    table: ajv.compile<TablePolicy>(POLICY_SCHEMAS.table),
    index: ajv.compile<IndexPolicy>(POLICY_SCHEMAS.index),
    key: ajv.compile<IndexKey>(POLICY_SCHEMAS.key),
    routing: ajv.compile<RoutingPolicy>(POLICY_SCHEMAS.routing),
    defaults: ajv.compile(POLICY_SCHEMAS.defaults),
  };
  return compiled;
}
