import { createInterface } from 'node:readline/promises';
import { useColor } from '../render/color.ts';
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
  color: useColor({ flag: process.argv.includes('--no-color'), env: process.env, isTTY: Boolean(process.stdout.isTTY) }),
  prompt: async (question) => {
    const rl = createInterface({ input: process.stdin, output: process.stdout });
    // At a prompt the terminal hands Ctrl-C to readline, not to the process: pass it on, so it stops
    // the command like a Ctrl-C anywhere else, and the question is given up.
    rl.on('SIGINT', () => process.kill(process.pid, 'SIGINT'));
    try {
      return await rl.question(question, { signal: controller.signal });
    } finally {
      rl.close();
    }
  },
  signal: controller.signal,
});
process.exitCode = code;
