import type { SessionInfo } from '../../../../engine/live-health/health-snapshot.ts';
import { ms } from '../../lib/format.ts';

/**
 * Who blocks whom, as a tree: each session that holds a lock others wait for, and under it the sessions
 * waiting for it (and those waiting for them), with how long each has waited and its query. A session
 * blocked by several appears under each of them.
 */
export interface BlockingTreeProps {
  readonly sessions: readonly SessionInfo[];
}

function Node({ session, byBlocker, seen }: { session: SessionInfo; byBlocker: ReadonlyMap<number, SessionInfo[]>; seen: ReadonlySet<number> }) {
  const children = (byBlocker.get(session.pid) ?? []).filter((c) => !seen.has(c.pid));
  const next = new Set([...seen, session.pid]);
  return (
    <li data-testid="blocking-node" data-pid={session.pid}>
      <span className="blocking-pid">pid {session.pid}</span>{' '}
      {session.waitingMs !== null && session.waitingMs !== undefined ? <span className="badge warn">waiting {ms(session.waitingMs)}</span> : <span className="badge critical">blocking</span>}{' '}
      <span className="faint">
        {session.user} · {session.application || 'no application_name'} · {session.state} · in a transaction for {ms(session.transactionMs)}
      </span>
      <div className="query">{session.query}</div>
      {children.length > 0 ? (
        <ul>
          {children.map((c) => (
            <Node key={c.pid} session={c} byBlocker={byBlocker} seen={next} />
          ))}
        </ul>
      ) : null}
    </li>
  );
}

export function BlockingTree({ sessions }: BlockingTreeProps) {
  const byPid = new Map(sessions.map((s) => [s.pid, s]));
  const byBlocker = new Map<number, SessionInfo[]>();
  for (const s of sessions) for (const b of s.blockedBy ?? []) byBlocker.set(b, [...(byBlocker.get(b) ?? []), s]);
  if (byBlocker.size === 0) return null;
  // The roots: blockers that wait for nobody listed (the head of each chain).
  const roots = [...byBlocker.keys()].flatMap((pid) => {
    const s = byPid.get(pid);
    return s && !(s.blockedBy ?? []).some((b) => byPid.has(b)) ? [s] : [];
  });
  return (
    <div className="panel" data-testid="blocking">
      <div className="panel-title">
        <h3>Blocked sessions</h3>
        <span className="hint">who blocks whom, this database</span>
      </div>
      <ul className="blocking-tree">
        {roots.map((r) => (
          <Node key={r.pid} session={r} byBlocker={byBlocker} seen={new Set()} />
        ))}
      </ul>
      <p className="faint">
        End the head of a chain with <code>SELECT pg_catalog.pg_cancel_backend(pid);</code> (its statement) or <code>pg_terminate_backend(pid)</code> (its session).
      </p>
    </div>
  );
}
