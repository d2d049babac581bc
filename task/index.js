// Slot Release task entry point: the agent runs `node index.js`; this starts the Rust binary for the
// agent's platform and gets out of its way. No npm dependencies: importing azure-pipelines-task-lib
// would delete the INPUT_* and ENDPOINT_AUTH_* variables the binary needs from the environment.
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

// Node's platform-arch to the folder names the release pipeline builds binaries for.
const PLATFORMS = {
  'linux-x64': 'linux-x64',
  'linux-arm64': 'linux-arm64',
  'win32-x64': 'win-x64',
  'darwin-x64': 'osx-x64',
  'darwin-arm64': 'osx-arm64',
};

// The agent's escaping for logging-command data (percent first, so the other escapes stay intact).
function escapeData(text) {
  return String(text)
    .replace(/%/g, '%AZP25')
    .replace(/\r/g, '%0D')
    .replace(/\n/g, '%0A')
    .replace(/]/g, '%5D')
    .replace(/;/g, '%3B');
}

// Reports a failure the way a task should: a task.complete command, then exit 0 (a non-zero exit
// would be reported as an infrastructure failure that hides this message).
function fail(message) {
  process.stdout.write(`##vso[task.complete result=Failed;]${escapeData(message)}\n`);
  process.exit(0);
}

function locateBinary() {
  // For the end-to-end tests and for trying a locally built binary; never set by the agent.
  const override = process.env.SLOT_RELEASE_BINARY;
  if (override) {
    return override;
  }
  const key = `${process.platform}-${process.arch}`;
  const folder = PLATFORMS[key];
  if (!folder) {
    const supported = Object.values(PLATFORMS).join(', ');
    fail(`Slot Release does not support this agent's platform (${key}); supported: ${supported}.`);
  }
  const exe = process.platform === 'win32' ? 'slot-release.exe' : 'slot-release';
  return path.join(__dirname, 'bin', folder, exe);
}

function main() {
  const binary = locateBinary();
  if (!fs.existsSync(binary)) {
    fail(`The Slot Release binary is missing from the task folder: ${binary}. Reinstall the extension.`);
  }
  if (process.platform !== 'win32') {
    // The .vsix does not keep Unix modes, so the execute bit has to be restored on every run.
    try {
      fs.chmodSync(binary, 0o755);
    } catch (err) {
      try {
        fs.accessSync(binary, fs.constants.X_OK);
      } catch {
        fail(`Cannot make the Slot Release binary executable (${binary}): ${err.message}`);
      }
    }
  }

  const child = spawn(binary, process.argv.slice(2), {
    env: childEnv(process.env),
    stdio: 'inherit',
    windowsHide: true,
  });

  // The agent signals only this process; the binary must hear it to stop safely.
  // On Windows the console control event reaches the child directly, so only keep node alive.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGBREAK']) {
    try {
      process.on(signal, () => {
        if (process.platform !== 'win32' && child.exitCode === null && child.signalCode === null) {
          child.kill(signal);
        }
      });
    } catch {
      // SIGBREAK does not exist on every platform.
    }
  }

  child.on('error', (err) => {
    fail(`Cannot start the Slot Release binary (${binary}): ${err.message}`);
  });

  child.on('exit', (code, signal) => {
    if (signal) {
      // A signal death is a crash from the agent's point of view: report it with a non-zero exit.
      const number = os.constants.signals[signal] || 1;
      process.stderr.write(`slot-release was stopped by ${signal}\n`);
      process.exit(128 + number);
    }
    process.exit(code === null ? 1 : code);
  });
}

// The binary's environment: the agent's, with library backtraces off unless the pipeline set them.
// A user debugging a pipeline with RUST_BACKTRACE=1 would otherwise make the Azure SDK capture a full
// backtrace on every request (it builds an error internally for a header it does not find), costing
// about 7% of the CPU of a Key Vault read. A panic's backtrace still follows RUST_BACKTRACE.
function childEnv(env) {
  if (env.RUST_LIB_BACKTRACE !== undefined) {
    return env;
  }
  return { ...env, RUST_LIB_BACKTRACE: '0' };
}

if (require.main === module) {
  main();
} else {
  // Loaded by the unit tests (index.test.js), not by the agent.
  module.exports = { childEnv, escapeData, PLATFORMS };
}
