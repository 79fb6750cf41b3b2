import { createInterface } from 'node:readline/promises';
import { run } from './main.ts';

// The binary's process wiring; everything else is in run(), which tests call directly.
const controller = new AbortController();
let interrupts = 0;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    interrupts += 1;
    if (interrupts > 1) process.exit(130);
    process.stderr.write(`\npgwarden: ${signal} received; finishing or rolling back the current step (again to force quit)\n`);
    controller.abort();
  });
}

const code = await run(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
  cwd: process.cwd(),
  isTTY: Boolean(process.stdout.isTTY && process.stdin.isTTY),
  color: Boolean(process.stdout.isTTY) && !process.env['NO_COLOR'],
  prompt: async (question) => {
    const rl = createInterface({ input: process.stdin, output: process.stdout });
    try {
      return await rl.question(question);
    } finally {
      rl.close();
    }
  },
  signal: controller.signal,
});
process.exitCode = code;
