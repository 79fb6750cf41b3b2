// The scripts of the pgwarden GitHub Action (action.yml): plain Node (20+), no dependencies, the GitHub
// REST API through fetch at $GITHUB_API_URL (the tests point it at a local server that records calls).
//
//   node pgwarden-action.mjs plan     pull request: plan, save plan.json, post or update the one comment
//   node pgwarden-action.mjs locate   after merge: find the merged pull request's reviewed plan (run, artifact)
//   node pgwarden-action.mjs apply    after merge: apply exactly that plan; a stale one (exit 3) is planned
//                                     again, posted for review, and nothing is applied
import { execFile } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const MARKER = '<!-- pgwarden-plan -->';
const PLAN_BEGIN = '<!-- pgwarden-plan-text -->';
const PLAN_END = '<!-- /pgwarden-plan-text -->';
/** pgwarden's exit code for a saved plan made against another catalog state (see docs/cli.md). */
const EXIT_STALE_PLAN = 3;

const env = process.env;
const input = (name, fallback = '') => (env[`INPUT_${name.toUpperCase().replace(/-/gu, '_')}`] ?? '').trim() || fallback;
const workDir = path.resolve(input('plan-dir', '.pgwarden-action'));
const planFile = path.join(workDir, 'plan.json');

function output(name, value) {
  if (env.GITHUB_OUTPUT) appendFileSync(env.GITHUB_OUTPUT, `${name}=${value}\n`);
}

/** Runs pgwarden (`input pgwarden`, default `npx --no-install pgwarden`) and returns its exit code and output. */
function pgwarden(args) {
  const [command, ...prefix] = input('pgwarden', 'npx --no-install pgwarden').split(/\s+/u);
  return new Promise((resolve) => {
    execFile(command, [...prefix, ...args, '--policies', input('policies', 'policies'), '--no-color'], { maxBuffer: 64 * 1024 * 1024, env }, (error, stdout, stderr) => {
      process.stderr.write(stderr);
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

async function github(method, route, body) {
  const url = `${env.GITHUB_API_URL ?? 'https://api.github.com'}/repos/${env.GITHUB_REPOSITORY}${route}`;
  const response = await fetch(url, {
    method,
    headers: {
      accept: 'application/vnd.github+json',
      authorization: `Bearer ${input('github-token', env.GITHUB_TOKEN ?? '')}`,
      'x-github-api-version': '2022-11-28',
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (!response.ok) throw new Error(`GitHub API ${method} ${route}: ${response.status} ${await response.text()}`);
  return response.status === 204 ? null : response.json();
}

/** The pull request's pgwarden comment (the one with the marker), or undefined. */
async function findComment(pr) {
  for (let page = 1; ; page += 1) {
    const comments = await github('GET', `/issues/${pr}/comments?per_page=100&page=${page}`);
    const found = comments.find((c) => typeof c.body === 'string' && c.body.includes(MARKER));
    if (found || comments.length < 100) return found;
  }
}

/** Posts the comment, or updates the one already there: a pull request has one pgwarden comment. */
async function upsertComment(pr, body) {
  if (input('comment', 'true') !== 'true') return;
  const existing = await findComment(pr);
  if (existing) await github('PATCH', `/issues/comments/${existing.id}`, { body });
  else await github('POST', `/issues/${pr}/comments`, { body });
}

function commentBody(markdown, review, note = '') {
  const runUrl = `${env.GITHUB_SERVER_URL ?? 'https://github.com'}/${env.GITHUB_REPOSITORY}/actions/runs/${env.GITHUB_RUN_ID}`;
  return [
    MARKER,
    `<!-- pgwarden-review ${JSON.stringify(review)} -->`,
    ...(note ? [note] : []),
    PLAN_BEGIN,
    markdown.trim(),
    PLAN_END,
    '',
    `<sub>pgwarden, [run ${env.GITHUB_RUN_ID}](${runUrl})</sub>`,
    '',
  ].join('\n');
}

/** The plan's Markdown in a comment this script wrote. */
function planText(body) {
  const start = body.indexOf(PLAN_BEGIN);
  const end = body.indexOf(PLAN_END);
  return start >= 0 && end > start ? body.slice(start + PLAN_BEGIN.length, end).trim() : '';
}

function reviewOf(body) {
  const match = /<!-- pgwarden-review (\{.*?\}) -->/u.exec(body ?? '');
  return match ? JSON.parse(match[1]) : undefined;
}

function event() {
  return JSON.parse(readFileSync(env.GITHUB_EVENT_PATH, 'utf8'));
}

async function plan() {
  const pull = event().pull_request;
  if (!pull) throw new Error('the plan command runs on pull_request events');
  mkdirSync(workDir, { recursive: true });
  const result = await pgwarden(['plan', '--out', planFile, '--format', 'markdown', '--detailed-exitcode']);
  const artifact = `${input('artifact', 'pgwarden-plan')}-${pull.number}`;
  if (result.code !== 0 && result.code !== 2) {
    await upsertComment(pull.number, commentBody(`**pgwarden plan failed** (exit ${result.code}):\n\n\`\`\`\n${result.stderr.trim()}\n\`\`\``, { headSha: pull.head.sha, runId: env.GITHUB_RUN_ID, artifact: null }));
    return result.code;
  }
  await upsertComment(pull.number, commentBody(result.stdout, { headSha: pull.head.sha, runId: env.GITHUB_RUN_ID, artifact }));
  output('changes', result.code === 2 ? 'true' : 'false');
  output('artifact', artifact);
  output('plan-file', planFile);
  return 0;
}

/** The pull request merged as this push's commit, and the plan reviewed on its last head. */
async function locate() {
  const pulls = await github('GET', `/commits/${env.GITHUB_SHA}/pulls`);
  const pull = pulls.find((p) => p.merged_at);
  if (!pull) throw new Error(`no merged pull request has commit ${env.GITHUB_SHA}: there is no reviewed plan to apply, so nothing is applied`);
  const review = reviewOf((await findComment(pull.number))?.body);
  if (!review?.artifact) throw new Error(`pull request #${pull.number} has no pgwarden plan comment with a saved plan: nothing is applied`);
  if (review.headSha !== pull.head.sha) {
    throw new Error(`the plan on pull request #${pull.number} was made for ${review.headSha}, not its last commit ${pull.head.sha}: nothing is applied`);
  }
  // Drops and detaches only with the label on the merged pull request (the same as --allow-drop).
  const label = input('allow-drop-label', 'pgwarden:allow-drop');
  output('allow-drop', (pull.labels ?? []).some((l) => l.name === label) ? 'true' : 'false');
  output('pr', String(pull.number));
  output('run-id', String(review.runId));
  output('artifact', review.artifact);
  return 0;
}

async function apply() {
  const pr = input('pr');
  if (!pr) throw new Error('apply needs the pull request (the locate step\'s output)');
  const review = reviewOf((await findComment(pr))?.body) ?? {};
  const result = await pgwarden(['apply', '--auto-approve', '--plan', planFile]);
  output('exit-code', String(result.code));
  if (result.code === EXIT_STALE_PLAN) {
    // Never apply what nobody reviewed: post the new plan and stop.
    const again = await pgwarden(['plan', '--format', 'markdown']);
    const note = `**Not applied: the database changed since this plan was reviewed** (pgwarden exit ${EXIT_STALE_PLAN}, stale plan). The plan for the database as it is now is below; review it and re-run the apply, or open a pull request.\n`;
    await upsertComment(pr, commentBody(again.code === 0 ? again.stdout : `\`\`\`\n${again.stderr.trim()}\n\`\`\``, { ...review, stale: true }, note));
    return EXIT_STALE_PLAN;
  }
  const planned = planText((await findComment(pr))?.body ?? '');
  const note = result.code === 0
    ? `**Applied** after merge (${(env.GITHUB_SHA ?? '').slice(0, 7)}): ${result.stdout.trim().split('\n').at(-1)}\n`
    : `**Apply failed** (exit ${result.code}):\n\n\`\`\`\n${result.stderr.trim()}\n\`\`\`\n`;
  await upsertComment(pr, commentBody(planned, { ...review, applied: result.code === 0 }, note));
  return result.code;
}

const commands = { plan, locate, apply };
const name = process.argv[2];
if (!(name in commands)) {
  process.stderr.write(`usage: pgwarden-action.mjs plan|locate|apply (got ${name})\n`);
  process.exit(1);
}
try {
  process.exitCode = await commands[name]();
} catch (error) {
  process.stderr.write(`::error title=pgwarden::${String(error instanceof Error ? error.message : error).replace(/%/gu, '%25').replace(/\n/gu, '%0A')}\n`);
  process.exitCode = 1;
}
