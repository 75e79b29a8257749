/** bench/lifecycle.ts: the parent watch that makes a benchmark's Node children end with it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exitWithParent, PARENT_PID_ENV, parentWatchEnv } from '../../bench/lifecycle.ts';
import { sleep } from '../helpers/wait.ts';

test('parentWatchEnv names this process as the parent to watch', () => {
  assert.deepEqual(parentWatchEnv(), { [PARENT_PID_ENV]: String(process.pid) });
});

test('exitWithParent calls back at once when the named parent is not our parent, and takes the variable out of the environment', () => {
  const env: NodeJS.ProcessEnv = { [PARENT_PID_ENV]: String(process.ppid + 100_000), OTHER: 'kept' };
  let calls = 0;
  assert.equal(exitWithParent(() => calls++, env), true);
  assert.equal(calls, 1);
  assert.deepEqual(env, { OTHER: 'kept' }, 'our own children must not inherit the parent to watch');
});

test('exitWithParent stays quiet while the named parent is still our parent', async () => {
  const env: NodeJS.ProcessEnv = { [PARENT_PID_ENV]: String(process.ppid) };
  let calls = 0;
  assert.equal(exitWithParent(() => calls++, env), true);
  await sleep(500); // two and a half polls
  assert.equal(calls, 0);
});

test('exitWithParent watches nothing without a valid parent pid', () => {
  for (const value of [undefined, '', 'abc', '0', '-5', '1.5']) {
    const env: NodeJS.ProcessEnv = value === undefined ? {} : { [PARENT_PID_ENV]: value };
    let calls = 0;
    assert.equal(exitWithParent(() => calls++, env), false, `value ${String(value)}`);
    assert.equal(calls, 0);
    assert.equal(PARENT_PID_ENV in env, false);
  }
});
