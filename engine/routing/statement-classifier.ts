import { statementFacts, type StatementFacts } from './statement-facts.ts';
import { decideRoute, emptyKnowledge, type RouteDecision, type RoutingKnowledge } from './statement-route.ts';

/**
 * Classifies statements with a cache per statement text: the parse (about 0.3 ms in WASM) happens once
 * per distinct text, and a cached decision costs a map lookup. Applications send a bounded set of
 * texts (parameters are bind values); the cache is bounded all the same, two generations of
 * `maxEntries`, so a stream of one-off texts with inlined literals cannot grow it without limit.
 */
export interface StatementClassifier {
  /** A decision, synchronously when the text was seen before (the common case). */
  route(text: string): RouteDecision | Promise<RouteDecision>;
  /** A text a standby refused (it writes after all): the primary's from now on. */
  learnPrimary(text: string, detail: string): void;
  setKnowledge(knowledge: RoutingKnowledge): void;
  knowledge(): RoutingKnowledge;
  stats(): ClassifierStats;
}

export interface ClassifierStats {
  readonly cached: number;
  readonly hits: number;
  readonly parses: number;
  readonly unparseable: number;
  readonly learned: number;
}

interface Entry {
  readonly facts: StatementFacts;
  decision: RouteDecision;
  version: number;
}

// Texts longer than this are classified every time rather than kept (bulk INSERTs with inlined values).
const MAX_CACHED_TEXT = 32 * 1024;

export function createStatementClassifier(options: { readonly maxEntries?: number } = {}): StatementClassifier {
  const maxEntries = options.maxEntries ?? 10_000;
  let current = new Map<string, Entry>();
  let previous = new Map<string, Entry>();
  const pending = new Map<string, Promise<RouteDecision>>();
  const learned = new Map<string, RouteDecision>();
  let known = emptyKnowledge;
  let hits = 0;
  let parses = 0;
  let unparseable = 0;

  const remember = (text: string, entry: Entry): void => {
    if (text.length > MAX_CACHED_TEXT) return;
    if (current.size >= maxEntries) {
      previous = current;
      current = new Map();
    }
    current.set(text, entry);
  };

  const fresh = (entry: Entry): RouteDecision => {
    if (entry.version !== known.version) {
      entry.decision = decideRoute(entry.facts, known);
      entry.version = known.version;
    }
    return entry.decision;
  };

  return {
    route(text) {
      const hit = current.get(text);
      if (hit !== undefined) {
        hits += 1;
        return fresh(hit);
      }
      const old = previous.get(text);
      if (old !== undefined) {
        hits += 1;
        remember(text, old);
        return fresh(old);
      }
      const taught = learned.get(text);
      if (taught !== undefined) return taught;
      const inFlight = pending.get(text);
      if (inFlight !== undefined) return inFlight;
      const decided = statementFacts(text).then((facts) => {
        parses += 1;
        if (facts.kind === 'unparseable') unparseable += 1;
        const entry: Entry = { facts, decision: decideRoute(facts, known), version: known.version };
        remember(text, entry);
        pending.delete(text);
        return entry.decision;
      });
      pending.set(text, decided);
      return decided;
    },
    learnPrimary(text, detail) {
      current.delete(text);
      previous.delete(text);
      // Bounded like the cache: a misclassification is rare, a flood of them is a bug to see in metrics.
      if (learned.size >= maxEntries) learned.clear();
      learned.set(text, { target: 'primary', reason: 'learned', detail });
    },
    setKnowledge(next) {
      known = next;
    },
    knowledge: () => known,
    stats: () => ({ cached: current.size + previous.size, hits, parses, unparseable, learned: learned.size }),
  };
}
