// Conformance checks through azure-pipelines-tasks-azure-arm-rest (the library behind
// AzureAppServiceManage@0 and AzureRmWebAppDeployment@4/5), unchanged, against the emulator.
// conform.py starts the emulator and runs this with the agent-style environment of a service
// connection (ENDPOINT_*), AGENT_PROXYURL (the emulator's proxy) and NODE_EXTRA_CA_CERTS.
// Prints one "CHECK ok|FAIL <name> :: <detail>" line per call; the driver collects them.
"use strict";

const tl = require("azure-pipelines-task-lib/task");
const { AzureRMEndpoint } = require("azure-pipelines-tasks-azure-arm-rest/azure-arm-endpoint");
const { AzureAppService } = require("azure-pipelines-tasks-azure-arm-rest/azure-arm-app-service");
const { AzureAppServiceUtility } = require("azure-pipelines-tasks-azure-arm-rest/azureAppServiceUtility");
const { ApplicationTokenCredentials } = require("azure-pipelines-tasks-azure-arm-rest/azure-arm-common");
const webClient = require("azure-pipelines-tasks-azure-arm-rest/webClient");
const { WebApi, getHandlerFromToken } = require("azure-devops-node-api");

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const RG = env("CONFORM_RG");
const APP = env("CONFORM_APP");

function expect(condition, message) {
  if (!condition) throw new Error(message);
}

async function check(name, fn) {
  try {
    await fn();
    console.log(`CHECK ok ${name}`);
  } catch (e) {
    const detail = String((e && e.message) || e).replace(/\s+/g, " ").slice(0, 600);
    console.log(`CHECK FAIL ${name} :: ${detail}`);
  }
}

async function inject(fault) {
  const request = new webClient.WebRequest();
  request.method = "POST";
  request.uri = `${env("CONFORM_ADMIN")}/faults`;
  request.headers = { "Content-Type": "application/json" };
  request.body = JSON.stringify(fault);
  const response = await webClient.sendRequest(request);
  expect(response.statusCode === 204, `admin API refused the fault: ${response.statusCode}`);
}

async function main() {
  let endpoint;
  await check("sign-in with a client secret (ADAL v1 token endpoint, resource=)", async () => {
    endpoint = await new AzureRMEndpoint(env("CONFORM_SPN")).getEndpoint();
    const token = await endpoint.applicationTokenCredentials.getToken();
    expect(token && token.split(".").length === 3, "no token");
  });
  await check("sign-in with a certificate (ADAL assertion: RS256, base64 x5t, v1 audience)", async () => {
    const cert = await new AzureRMEndpoint(env("CONFORM_CERT")).getEndpoint();
    const token = await cert.applicationTokenCredentials.getToken();
    expect(token && token.split(".").length === 3, "no token");
  });
  await check("job OIDC token (azure-devops-node-api location lookup + createOidcToken)", async () => {
    const connection = new WebApi(env("SYSTEM_COLLECTIONURI"), getHandlerFromToken(env("SYSTEM_ACCESSTOKEN")));
    const token = await ApplicationTokenCredentials.initOIDCToken(
      connection,
      env("SYSTEM_TEAMPROJECTID"),
      env("SYSTEM_HOSTTYPE"),
      env("SYSTEM_PLANID"),
      env("SYSTEM_JOBID"),
      env("CONFORM_WIF"),
      1,
      100
    );
    expect(token && token.split(".").length === 3, "no OIDC token");
  });
  if (!endpoint) return;

  const production = new AzureAppService(endpoint, RG, APP, "production");
  const staging = new AzureAppService(endpoint, RG, APP, "staging");

  await check("get site and slot (AzureAppService.get)", async () => {
    const site = await production.get(true);
    expect(site.properties.state === "Running", `state ${site.properties.state}`);
    const slot = await staging.get(true);
    expect(slot.name === `${APP}/staging`, `name ${slot.name}`);
  });
  await check("app settings read and write (getApplicationSettings, patchApplicationSettings)", async () => {
    const changed = await staging.patchApplicationSettings({ ARR_CONFORMANCE: "1" });
    expect(changed, "patch reported no change");
    const settings = await staging.getApplicationSettings(true);
    expect(settings.properties.ARR_CONFORMANCE === "1", JSON.stringify(settings.properties));
    expect(settings.properties.SLOT_NAME === "stage", "sticky setting lost");
  });
  await check("configuration read and patch (getConfiguration, patchConfiguration)", async () => {
    const config = await staging.getConfiguration();
    expect(config.properties.appCommandLine, "no appCommandLine");
    await staging.patchConfiguration({ properties: { healthCheckPath: "/index.html" } });
    const again = await staging.getConfiguration();
    expect(again.properties.healthCheckPath === "/index.html", "patch not applied");
  });
  await check("metadata read and write (getMetadata, patchMetadata)", async () => {
    await staging.patchMetadata({ CURRENT_STACK: "python" });
    const metadata = await staging.getMetadata();
    expect(metadata.properties.CURRENT_STACK === "python", JSON.stringify(metadata.properties));
  });
  await check("swap (swap, polled through Azure-AsyncOperation)", async () => {
    await staging.swap("production", true);
    const settings = await production.getApplicationSettings(true);
    expect(settings.properties.ARR_CONFORMANCE === "1", "the swap moved nothing");
  });
  await check("swap with preview: apply, then complete (swapSlotWithPreview, swap)", async () => {
    await staging.swapSlotWithPreview("production", true);
    await staging.swap("production", true);
  });
  await check("swap with preview: apply, then reset (swapSlotWithPreview, cancelSwapSlotWithPreview)", async () => {
    await staging.swapSlotWithPreview("production", true);
    await staging.cancelSwapSlotWithPreview();
    const settings = await staging.getApplicationSettings(true);
    expect(settings.properties.SLOT_NAME === "stage", JSON.stringify(settings.properties));
  });
  await check("a failed swap is seen as failed (warm-up fault)", async () => {
    await inject({ kind: "swapWarmupFails", app: APP });
    let failed = false;
    try {
      await staging.swap("production", true);
    } catch (e) {
      failed = true;
      expect(String(e.message).includes("WEBSITE_SWAP_WARMUP_PING_PATH"), `unexpected error: ${e.message}`);
    }
    expect(failed, "the failed swap was reported as a success");
  });
  await check("restart, stop and start (restart, stop, start)", async () => {
    await staging.restart();
    await staging.stop();
    expect((await staging.get(true)).properties.state === "Stopped", "not stopped");
    await staging.start();
    expect((await staging.get(true)).properties.state === "Running", "not running");
  });
  await check("publishing credentials (getPublishingCredentials, getSitePublishingCredentialPolicies)", async () => {
    const credentials = await staging.getPublishingCredentials();
    expect(credentials.properties.scmUri, "no scmUri");
    const policy = await staging.getSitePublishingCredentialPolicies();
    expect(typeof policy.properties.allow === "boolean", JSON.stringify(policy));
  });
  let kudu;
  await check("Kudu sign-in (AzureAppServiceUtility.getKuduService)", async () => {
    kudu = await new AzureAppServiceUtility(staging).getKuduService();
    expect(kudu, "no Kudu client");
  });
  if (!kudu) return;
  await check("OneDeploy (Kudu.oneDeploy, polled to success)", async () => {
    const result = await kudu.oneDeploy(env("CONFORM_PACKAGE"), ["type=zip", "async=true"]);
    expect(result && result.status === 4, `deployment status ${result && result.status}`);
  });
  await check("ZipDeploy and deployment details (Kudu.zipDeploy, getDeploymentDetails)", async () => {
    const result = await kudu.zipDeploy(env("CONFORM_PACKAGE"), ["isAsync=true", "deployer=VSTS_ZIP_DEPLOY"]);
    expect(result && result.status === 4, `deployment status ${result && result.status}`);
    const details = await kudu.getDeploymentDetails(result.id);
    expect(details.id === result.id, JSON.stringify(details));
  });
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  }
);
