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
const msal = require("@azure/msal-node");
const crypto = require("crypto");
const fs = require("fs");
const http = require("http");
const https = require("https");
const tls = require("tls");

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

// msal-node's network module through the agent's proxy: a CONNECT tunnel with TLS inside it, which is
// what azure-arm-rest's own MSAL network client does (msal-node's built-in `proxyUrl` sends plain HTTP
// inside the tunnel, which no TLS endpoint answers).
function proxyNetworkClient(proxyUrl) {
  const proxy = new URL(proxyUrl);
  const tunnel = (target) =>
    new Promise((resolve, reject) => {
      const port = target.port || "443";
      const connect = http.request({
        host: proxy.hostname,
        port: proxy.port,
        method: "CONNECT",
        path: `${target.hostname}:${port}`,
      });
      connect.on("connect", (response, socket) => {
        if (response.statusCode !== 200) {
          socket.destroy();
          reject(new Error(`the proxy refused ${target.host}: ${response.statusCode}`));
          return;
        }
        resolve(tls.connect({ socket, servername: target.hostname }));
      });
      connect.on("error", reject);
      connect.end();
    });
  const send = (method) => async (url, options = {}) => {
    const target = new URL(url);
    const socket = await tunnel(target);
    return new Promise((resolve, reject) => {
      const request = https.request(
        url,
        { method, headers: options.headers || {}, createConnection: () => socket },
        (response) => {
          const chunks = [];
          response.on("data", (c) => chunks.push(c));
          response.on("end", () => {
            const text = Buffer.concat(chunks).toString();
            let body;
            try {
              body = JSON.parse(text);
            } catch (e) {
              body = { error: "non_json_response", error_description: text };
            }
            resolve({ status: response.statusCode, headers: response.headers, body });
          });
        }
      );
      request.on("error", reject);
      if (options.body) request.write(options.body);
      request.end();
    });
  };
  return { sendGetRequestAsync: send("GET"), sendPostRequestAsync: send("POST") };
}

// msal-node, at the version azure-arm-rest's MSAL path loads, configured as an app on a private
// authority is: `knownAuthorities` names the emulator's login host, so no instance discovery goes to
// login.microsoftonline.com (azure-arm-rest itself sets none; see docs/emulator.md).
async function msalChecks(oidcToken) {
  const authority = `${env("CONFORM_AUTHORITY")}/${env("CONFORM_TENANT")}`;
  const app = (credential) =>
    new msal.ConfidentialClientApplication({
      auth: {
        clientId: env("CONFORM_CLIENT"),
        authority,
        knownAuthorities: [new URL(authority).host],
        ...credential,
      },
      system: { networkClient: proxyNetworkClient(env("AGENT_PROXYURL")) },
    });
  const scopes = ["https://management.emulator.test/.default"];
  const signIn = async (credential) => {
    const result = await app(credential).acquireTokenByClientCredential({ scopes });
    expect(result && result.accessToken, "no token");
  };
  await check("msal-node: sign-in with a client secret (OpenID configuration, v2 endpoint)", () =>
    signIn({ clientSecret: env("CONFORM_SECRET") })
  );
  await check("msal-node: sign-in with a certificate (x5t#S256, PS256)", () => {
    const certificate = fs.readFileSync(env("CONFORM_CERT_PEM"), "utf8");
    const thumbprintSha256 = new crypto.X509Certificate(certificate).fingerprint256.replace(/:/g, "");
    return signIn({
      clientCertificate: { thumbprintSha256, privateKey: fs.readFileSync(env("CONFORM_KEY_PEM"), "utf8") },
    });
  });
  await check("msal-node: sign-in with the job's OIDC token as client assertion (azure-arm-rest's WIF path)", () => {
    expect(oidcToken, "no OIDC token to exchange");
    return signIn({ clientAssertion: oidcToken });
  });
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
  let oidcToken;
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
    oidcToken = token;
  });
  await msalChecks(oidcToken);
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
