/** The programmatic API: the same pipeline the CLI runs. */
export { loadPolicies } from './policy/load.ts';
export type { DesiredState, DesiredTable, DesiredIndex, PolicyError } from './policy/desired.ts';
export { formatPolicyError } from './policy/desired.ts';
export { makePlan, type PlanOutcome } from './plan/make-plan.ts';
export type { Plan, PlannedChange } from './plan/plan.ts';
export { apply, ApplyError, type ApplyOptions, type ApplyEvent } from './apply/apply.ts';
export { renderPlanText } from './render/render-text.ts';
export { renderPlanMarkdown } from './render/render-markdown.ts';
export { clusterUp, clusterDown, clusterStatus } from './cluster/embedded-cluster.ts';
export { ident, qualified } from './sql/ident.ts';
