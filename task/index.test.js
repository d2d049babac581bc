// Unit tests for the entry point's own logic (`node --test task/index.test.js`). The end-to-end
// behaviour (binary selection, signals, exit codes) is tested through the real agent harness in tests/.
'use strict';

const test = require('node:test');
const assert = require('node:assert');
const { childEnv, escapeData, PLATFORMS } = require('./index.js');

// The agent's unescaping: the special symbols first, then %AZP25.
function agentUnescape(text) {
  return text
    .replace(/%3B/g, ';')
    .replace(/%0D/g, '\r')
    .replace(/%0A/g, '\n')
    .replace(/%5D/g, ']')
    .replace(/%AZP25/g, '%');
}

test('escapeData round-trips through the agent unescaping', () => {
  for (const text of ['plain', '100% done', 'a;b]c\r\nd', '%0A literally', '%AZP25', ']]];;;%%%']) {
    const escaped = escapeData(text);
    assert.ok(!/[\r\n\];]/.test(escaped), `unescaped special character in ${escaped}`);
    assert.strictEqual(agentUnescape(escaped), text);
  }
});

test('the platform folders match the release binaries', () => {
  assert.deepStrictEqual(Object.values(PLATFORMS).sort(), ['linux-arm64', 'linux-x64', 'osx-arm64', 'osx-x64', 'win-x64']);
});

test('library backtraces are off for the binary unless the pipeline set them', () => {
  assert.strictEqual(childEnv({ PATH: '/bin', RUST_BACKTRACE: '1' }).RUST_LIB_BACKTRACE, '0');
  assert.strictEqual(childEnv({ PATH: '/bin' }).PATH, '/bin', 'the rest passes through');
  assert.strictEqual(childEnv({ RUST_LIB_BACKTRACE: '1' }).RUST_LIB_BACKTRACE, '1');
});
