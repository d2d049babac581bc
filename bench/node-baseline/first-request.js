// Start-up baseline: what a Node task built on azure-pipelines-task-lib and
// azure-pipelines-tasks-azure-arm-rest does before its first Azure request (load both libraries,
// read the service connection, ask for a token). Run by `cargo xtask bench`, which measures the time
// from spawning this process to the emulator receiving its first request.
'use strict';

// The emulator's host names all live on 127.0.0.1; a real agent would resolve them through DNS.
const dns = require('node:dns');
const realLookup = dns.lookup;
dns.lookup = function lookup(hostname, options, callback) {
  if (typeof hostname === 'string' && hostname.endsWith('.emulator.test')) {
    const cb = typeof options === 'function' ? options : callback;
    const all = typeof options === 'object' && options !== null && options.all;
    process.nextTick(() => (all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4)));
    return {};
  }
  return realLookup.apply(this, arguments);
};

const tl = require('azure-pipelines-task-lib/task');
const { AzureRMEndpoint } = require('azure-pipelines-tasks-azure-arm-rest/azure-arm-endpoint');

async function main() {
  const connection = tl.getInput('azureSubscription', true);
  // The library's default token path (useMSAL=false): MSAL would first ask the public cloud for
  // instance metadata, which a loopback-only benchmark cannot reach. Only the time to the first
  // request is measured, so what the emulator answers to it does not matter.
  const endpoint = await new AzureRMEndpoint(connection).getEndpoint();
  await endpoint.applicationTokenCredentials.getToken();
  tl.setResult(tl.TaskResult.Succeeded, 'token acquired');
}

main().catch((err) => tl.setResult(tl.TaskResult.Failed, String(err && err.message ? err.message : err)));
