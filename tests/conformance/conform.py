#!/usr/bin/env python3
"""Conformance suite: Microsoft's own clients, unchanged, against `slot-release emulator`.

Starts the real emulator binary with a seed written here, then runs every call Slot Release depends
on through the Python SDKs (azure-identity, azure-mgmt-web, azure-keyvault-secrets) in this process
and through azure-arm-rest (Node, `arr.js`) in a child process. The clients find the emulator only
through their ordinary configuration and the process environment: the authority and ARM endpoint as
client options, the emulator's CA through REQUESTS_CA_BUNDLE / NODE_EXTRA_CA_CERTS, and every
`*.emulator.test` host through the emulator's own HTTPS proxy (HTTPS_PROXY / AGENT_PROXYURL).

Every call is a named check; the suite prints one line per check and exits non-zero naming each
check that failed. Usage: conform.py --binary target/debug/slot-release
"""

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
TENANT = "72f988bf-0000-0000-0000-00000000c0f1"
CLIENT = "11111111-0000-0000-0000-00000000c0f1"
SECRET = "conformance-client-secret"
SUB = "00000000-0000-0000-0000-00000000c0f1"
RG = "conform-rg"
APP = "conform-web"
FUNC_APP = "conform-func"
SC_APP = "conform-sc"
VAULT = "conform-kv"
SPN_CONNECTION = "5a7c3f10-0000-0000-0000-00000000c001"
CERT_CONNECTION = "5a7c3f10-0000-0000-0000-00000000c002"
WIF_CONNECTION = "5a7c3f10-0000-0000-0000-00000000c003"
SYSTEM_ACCESS_TOKEN = "conformance-system-access-token"
MSI_CONNECTION = "5a7c3f10-0000-0000-0000-00000000c004"
MANAGED_IDENTITY = "22222222-0000-0000-0000-00000000c0f1"
ARM_SCOPE = "https://management.emulator.test/.default"

RESULTS = []


def check(name):
    """Runs the decorated function as one named check and records pass or fail."""

    def wrap(fn):
        started = time.monotonic()
        try:
            fn()
        except Exception as e:  # every failure is reported with its call's name
            RESULTS.append((name, False, f"{type(e).__name__}: {e}"))
            print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
            if os.environ.get("CONFORMANCE_VERBOSE"):
                traceback.print_exc()
        else:
            RESULTS.append((name, True, ""))
            print(f"ok   {name} ({time.monotonic() - started:.1f} s)", flush=True)
        return fn

    return wrap


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


def make_certificate(work):
    """A self-signed RSA certificate and its key, as an app registration's certificate credential."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "conformance-sp")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    both = os.path.join(work, "sp.pem")
    with open(both, "w") as f:
        f.write(key_pem + cert_pem)
    return cert_pem, key_pem, both


def write_seed(work, cert_pem):
    site = {}
    for slot, text in (("production", "v1"), ("staging", "v2")):
        d = os.path.join(work, f"site-{slot}")
        os.makedirs(d)
        with open(os.path.join(d, "index.html"), "w") as f:
            f.write(text)
        site[slot] = d
    command = "exec python3 -m http.server \"$PORT\" --bind 127.0.0.1"
    seed = {
        "tenantId": TENANT,
        "systemAccessToken": SYSTEM_ACCESS_TOKEN,
        "clients": [{"clientId": CLIENT, "secret": SECRET, "certificates": [cert_pem]}],
        "managedIdentities": [{"clientId": MANAGED_IDENTITY}],
        "serviceConnections": [
            {"id": SPN_CONNECTION, "name": "conform-spn", "kind": "servicePrincipal", "clientId": CLIENT, "subscriptionId": SUB},
            {"id": WIF_CONNECTION, "name": "conform-wif", "kind": "workloadIdentityFederation", "clientId": CLIENT, "subscriptionId": SUB},
            {"id": MSI_CONNECTION, "name": "conform-msi", "kind": "managedIdentity", "clientId": MANAGED_IDENTITY, "subscriptionId": SUB},
        ],
        "subscriptions": [
            {
                "id": SUB,
                "name": "Conformance",
                "resourceGroups": [
                    {
                        "name": RG,
                        "apps": [
                            {
                                "name": APP,
                                "kind": "code",
                                "slotConfigNames": {"appSettingNames": ["SLOT_NAME"]},
                                "slots": [
                                    {
                                        "name": "production",
                                        "appSettings": {"SLOT_NAME": "prod", "GREETING": "hello-v1"},
                                        "siteConfig": {"appCommandLine": command},
                                        "contentDir": site["production"],
                                    },
                                    {
                                        "name": "staging",
                                        "appSettings": {"SLOT_NAME": "stage", "GREETING": "hello-v2"},
                                        "siteConfig": {"appCommandLine": command},
                                        "contentDir": site["staging"],
                                        "connectionStrings": {"DB": {"value": "Server=stage", "type": "SQLAzure"}},
                                    },
                                ],
                            },
                            {
                                "name": FUNC_APP,
                                "functionApp": True,
                                "plan": {"sku": "EP1"},
                                "slots": [{"name": "production"}, {"name": "staging"}],
                            },
                            {
                                "name": SC_APP,
                                "plan": {"sku": "P1v3"},
                                "slots": [
                                    {
                                        "name": "production",
                                        "siteConfig": {"linuxFxVersion": "SITECONTAINERS"},
                                        "siteContainers": {"main": {"image": "contoso/web:1", "isMain": True, "targetPort": "8080"}},
                                    },
                                    {"name": "staging", "siteConfig": {"linuxFxVersion": "SITECONTAINERS"}},
                                ],
                            },
                        ],
                        "vaults": [
                            {
                                "name": VAULT,
                                "secrets": [
                                    {"name": "db-password", "value": "s3cr3t", "previousValues": ["old-1", "old-2"]},
                                    {"name": "api-key", "value": "k3y", "contentType": "text/plain"},
                                ],
                            }
                        ],
                    }
                ],
            }
        ],
    }
    path = os.path.join(work, "seed.json")
    with open(path, "w") as f:
        json.dump(seed, f, indent=2)
    return path


class Emulator:
    """The real `slot-release emulator` process and what it printed."""

    def __init__(self, binary, seed, work):
        self.proc = subprocess.Popen(
            [binary, "emulator", "--seed", seed, "--work-dir", os.path.join(work, "emulator")],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines = []
        self.changed = time.monotonic()
        threading.Thread(target=self._read, daemon=True).start()
        # The summary is printed at once; it is complete when the output goes quiet after the
        # last service connection's environment.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = "".join(self.lines)
            if self.proc.poll() is not None:
                raise RuntimeError("the emulator exited before printing its endpoints:\n" + text)
            if "Environment for a ManagedIdentity" in text and time.monotonic() - self.changed > 0.5:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("the emulator printed no endpoints within 60 s:\n" + "".join(self.lines))
        values = {}
        for line in self.lines:
            m = re.match(r"^([A-Za-z ]+):\s+(\S.*)$", line.rstrip())
            if m:
                values[m.group(1).strip()] = m.group(2).strip()
        self.port = int(re.search(r"listening on 127\.0\.0\.1:(\d+)", text).group(1))
        self.ca = values["CA certificate"]
        self.arm = values["ARM"]
        self.authority = values["Authority"]
        self.oidc = values["Pipelines OIDC"]
        self.admin = values["Admin"]
        self.logs = values["Log Analytics"]
        self.proxy = values["HTTPS proxy"].split()[0]

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)
            self.changed = time.monotonic()

    def connection_env(self, connection_id):
        """The agent-style environment the emulator printed for one service connection."""
        env = {}
        for line in self.lines:
            m = re.match(r"^  ([A-Z0-9_]+(?:_[0-9A-Fa-f-]+)?[A-Z0-9_]*)=(.*)$", line.rstrip("\n"))
            if m and (connection_id in m.group(1) or not re.search(r"[0-9a-f]{8}-", m.group(1))):
                env[m.group(1)] = m.group(2)
        expect(f"ENDPOINT_URL_{connection_id}" in env, f"no environment printed for {connection_id}")
        return env

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def inject(emu, fault):
    import requests

    r = requests.post(f"{emu.admin}/faults", json=fault, timeout=30)
    expect(r.status_code == 204, f"admin API refused the fault: {r.status_code} {r.text}")


def python_checks(emu, sp_pem):
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
    from azure.identity import AzurePipelinesCredential, CertificateCredential, ClientSecretCredential
    from azure.keyvault.secrets import SecretClient
    from azure.mgmt.web import WebSiteManagementClient
    from azure.mgmt.web.models import (
        ConnectionStringDictionary,
        ConnStringValueTypePair,
        CsmSlotEntity,
        SiteConfigResource,
        SiteContainer,
        StringDictionary,
    )

    # The authority is the emulator's; instance discovery would ask login.microsoftonline.com
    # about it, which is the client's own switch to turn off for a private authority.
    common = {"authority": emu.authority, "disable_instance_discovery": True}
    secret_cred = ClientSecretCredential(TENANT, CLIENT, SECRET, **common)

    @check("python: sign-in with a client secret (azure-identity ClientSecretCredential)")
    def _():
        expect(secret_cred.get_token(ARM_SCOPE).token, "no token")

    @check("python: sign-in with a certificate (azure-identity CertificateCredential, MSAL PS256 + x5t#S256)")
    def _():
        cred = CertificateCredential(TENANT, CLIENT, certificate_path=sp_pem, **common)
        expect(cred.get_token(ARM_SCOPE).token, "no token")

    @check("python: sign-in with the pipelines' OIDC token (azure-identity AzurePipelinesCredential)")
    def _():
        cred = AzurePipelinesCredential(
            tenant_id=TENANT,
            client_id=CLIENT,
            service_connection_id=WIF_CONNECTION,
            system_access_token=SYSTEM_ACCESS_TOKEN,
            **common,
        )
        expect(cred.get_token(ARM_SCOPE).token, "no token")

    @check("python: sign-in with a managed identity (azure-identity ManagedIdentityCredential, App Service endpoint)")
    def _():
        msi = emu.connection_env(MSI_CONNECTION)
        os.environ["IDENTITY_ENDPOINT"], os.environ["IDENTITY_HEADER"] = msi["IDENTITY_ENDPOINT"], msi["IDENTITY_HEADER"]
        try:
            from azure.identity import ManagedIdentityCredential

            token = ManagedIdentityCredential(client_id=MANAGED_IDENTITY).get_token(ARM_SCOPE)
            expect(token.token, "no token")
        finally:
            del os.environ["IDENTITY_ENDPOINT"], os.environ["IDENTITY_HEADER"]

    web = WebSiteManagementClient(secret_cred, SUB, base_url=emu.arm, credential_scopes=[ARM_SCOPE])
    apps = web.web_apps

    @check("python: get site (web_apps.get)")
    def _():
        site = apps.get(RG, APP)
        expect(site.state == "Running", f"state {site.state}")
        expect(any(s.host_type == "Repository" for s in site.host_name_ssl_states), "no SCM host")

    @check("python: get slot (web_apps.get_slot)")
    def _():
        slot = apps.get_slot(RG, APP, "staging")
        expect(slot.name == f"{APP}/staging", f"name {slot.name}")

    @check("python: subscription-wide site list (web_apps.list)")
    def _():
        expect(any(s.name == APP for s in apps.list()), "app not listed")

    @check("python: app settings read and write (list/update_application_settings_slot)")
    def _():
        settings = apps.list_application_settings_slot(RG, APP, "staging").properties
        settings["CONFORMANCE"] = "1"
        apps.update_application_settings_slot(RG, APP, "staging", StringDictionary(properties=settings))
        again = apps.list_application_settings_slot(RG, APP, "staging").properties
        expect(again.get("CONFORMANCE") == "1" and again.get("SLOT_NAME") == "stage", f"{again}")

    @check("python: slot configuration names (list/update_slot_configuration_names)")
    def _():
        names = apps.list_slot_configuration_names(RG, APP)
        expect(names.app_setting_names == ["SLOT_NAME"], f"{names.app_setting_names}")
        back = apps.update_slot_configuration_names(RG, APP, names)
        expect(back.app_setting_names == ["SLOT_NAME"], f"{back.app_setting_names}")

    @check("python: configuration read and patch (get/update_configuration_slot)")
    def _():
        config = apps.get_configuration_slot(RG, APP, "staging")
        expect(config.app_command_line, "no appCommandLine")
        patched = apps.update_configuration_slot(
            RG, APP, "staging", SiteConfigResource(health_check_path="/index.html")
        )
        expect(patched.health_check_path == "/index.html", f"{patched.health_check_path}")

    @check("python: connection strings read and write (list/update_connection_strings_slot)")
    def _():
        listed = apps.list_connection_strings_slot(RG, APP, "staging").properties
        expect(listed["DB"].value == "Server=stage" and listed["DB"].type == "SQLAzure", f"{listed}")
        apps.update_connection_strings_slot(
            RG,
            APP,
            "staging",
            ConnectionStringDictionary(
                properties={
                    "DB": ConnStringValueTypePair(value="Server=stage-2", type="SQLAzure"),
                    "PG": ConnStringValueTypePair(value="Host=pg", type="PostgreSQL"),
                }
            ),
        )
        again = apps.list_connection_strings_slot(RG, APP, "staging").properties
        expect(sorted(again) == ["DB", "PG"] and again["PG"].type == "PostgreSQL", f"{again}")
        names = apps.list_slot_configuration_names(RG, APP)
        names.connection_string_names = ["DB"]
        back = apps.update_slot_configuration_names(RG, APP, names)
        expect(back.connection_string_names == ["DB"], f"{back.connection_string_names}")

    @check("python: whole site config update and ARM's validation (create_or_update_configuration_slot)")
    def _():
        config = apps.get_configuration_slot(RG, APP, "staging")
        config.always_on = True
        config.http20_enabled = True
        config.min_tls_version = "1.3"
        config.ftps_state = "FtpsOnly"
        config.python_version = "3.12"
        config.acr_use_managed_identity_creds = False
        written = apps.create_or_update_configuration_slot(RG, APP, "staging", config)
        expect(written.always_on and written.min_tls_version == "1.3" and written.ftps_state == "FtpsOnly", f"{written}")
        read = apps.get_configuration_slot(RG, APP, "staging")
        expect(read.http20_enabled and read.python_version == "3.12", f"{read}")
        try:
            apps.update_configuration_slot(RG, APP, "staging", SiteConfigResource(min_tls_version="1.9"))
        except HttpResponseError as e:
            expect(e.status_code == 400 and e.error.code == "BadRequest", f"{e.status_code} {e.error}")
        else:
            raise AssertionError("an invalid minTlsVersion was accepted")

    @check("python: sitecontainers (create_or_update/get/list/delete_site_container[_slot])")
    def _():
        main = apps.list_site_containers(RG, SC_APP)
        main = list(main)
        expect([c.name for c in main] == ["main"] and main[0].properties.is_main, f"{main}")
        apps.create_or_update_site_container_slot(
            RG, SC_APP, "staging", "main", SiteContainer(image="contoso/web:2", is_main=True, target_port="8080")
        )
        apps.create_or_update_site_container_slot(
            RG, SC_APP, "staging", "otel", SiteContainer(image="otel/collector:1", is_main=False)
        )
        got = apps.get_site_container_slot(RG, SC_APP, "staging", "main")
        expect(got.properties.image == "contoso/web:2" and got.properties.target_port == "8080", f"{got}")
        names = sorted(c.name for c in apps.list_site_containers_slot(RG, SC_APP, "staging"))
        expect(names == ["main", "otel"], f"{names}")
        apps.delete_site_container_slot(RG, SC_APP, "staging", "otel")
        try:
            apps.get_site_container_slot(RG, SC_APP, "staging", "otel")
        except ResourceNotFoundError:
            pass
        else:
            raise AssertionError("a deleted site container is still there")

    @check("python: App Service metrics of a slot (azure-monitor-query MetricsQueryClient.query_resource)")
    def _():
        from datetime import timedelta

        from azure.monitor.query import MetricAggregationType, MetricsQueryClient

        # The client's audience defaults to its endpoint, port included; ARM's is the bare host.
        metrics = MetricsQueryClient(secret_cred, endpoint=emu.arm, audience="https://management.emulator.test")
        slot_id = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Web/sites/{APP}/slots/staging"
        result = metrics.query_resource(
            slot_id,
            metric_names=["Requests", "Http5xx", "HttpResponseTime"],
            timespan=timedelta(minutes=10),
            granularity=timedelta(minutes=1),
            aggregations=[MetricAggregationType.TOTAL, MetricAggregationType.AVERAGE],
        )
        names = [m.name for m in result.metrics]
        expect(names == ["Requests", "Http5xx", "HttpResponseTime"], f"{names}")
        expect(result.granularity == timedelta(minutes=1), f"{result.granularity}")
        expect(result.namespace == "Microsoft.Web/sites/slots", f"{result.namespace}")
        requests_metric = result.metrics[0]
        expect(requests_metric.unit == "Count" and result.metrics[2].unit == "Seconds", "units")
        points = requests_metric.timeseries[0].data
        expect(10 <= len(points) <= 11 and all(p.total is not None for p in points), f"{points}")
        try:
            metrics.query_resource(slot_id, metric_names=["CpuPercentage"])
        except HttpResponseError as e:
            expect(e.status_code == 400 and "Valid metrics" in str(e), f"{e.status_code} {e}")
        else:
            raise AssertionError("a metric App Service does not define was answered")

    @check("python: Log Analytics query of AppRequests (azure-monitor-query LogsQueryClient.query_workspace)")
    def _():
        from datetime import timedelta

        from azure.monitor.query import LogsQueryClient, LogsQueryStatus

        # As for metrics, the client's audience would carry the port; the API's is the bare host.
        logs = LogsQueryClient(secret_cred, endpoint=emu.logs, audience="https://api.loganalytics.emulator.test")
        workspace = "6f1c3f7e-2b1a-4c59-9a51-0d5b6c7e8f90"
        result = logs.query_workspace(
            workspace,
            "AppRequests | summarize Requests = count(), Failed = countif(Success == false) by AppRoleName",
            timespan=timedelta(hours=1),
        )
        expect(result.status == LogsQueryStatus.SUCCESS, f"{result.status}")
        table = result.tables[0]
        expect(table.name == "PrimaryResult", table.name)
        expect(list(table.columns) == ["AppRoleName", "Requests", "Failed"], f"{table.columns}")
        expect(all(isinstance(row[1], int) for row in table.rows), f"{table.rows}")
        try:
            logs.query_workspace(workspace, "AppRequests | project Name", timespan=timedelta(hours=1))
        except HttpResponseError as e:
            expect(e.status_code == 400 and "BadArgumentError" in str(e), f"{e.status_code} {e}")
        else:
            raise AssertionError("a query outside the emulator's KQL subset was answered")

    @check("python: Functions host keys and the plan's SKU (list_host_keys[_slot], app_service_plans.get)")
    def _():
        prod = apps.list_host_keys(RG, FUNC_APP)
        stage = apps.list_host_keys_slot(RG, FUNC_APP, "staging")
        expect(prod.master_key and stage.master_key and prod.master_key != stage.master_key, "master keys")
        expect(prod.function_keys.get("default"), f"{prod.function_keys}")
        site = apps.get(RG, FUNC_APP)
        expect(site.kind == "functionapp,linux", f"{site.kind}")
        plan_name = site.server_farm_id.rsplit("/", 1)[-1]
        plan = web.app_service_plans.get(RG, plan_name)
        expect(plan.sku.tier == "ElasticPremium" and plan.sku.name == "EP1", f"{plan.sku}")

    @check("python: metadata read and write (list/update_metadata_slot)")
    def _():
        apps.update_metadata_slot(RG, APP, "staging", StringDictionary(properties={"CURRENT_STACK": "python"}))
        expect(apps.list_metadata_slot(RG, APP, "staging").properties == {"CURRENT_STACK": "python"}, "metadata")

    @check("python: slot differences (list_slot_differences_slot)")
    def _():
        diffs = list(apps.list_slot_differences_slot(RG, APP, "staging", CsmSlotEntity(target_slot="production", preserve_vnet=True)))
        expect(any(d.setting_name == "GREETING" for d in diffs), f"{[d.setting_name for d in diffs]}")

    @check("python: swap (begin_swap_slot, polled by ARMPolling)")
    def _():
        apps.begin_swap_slot(RG, APP, "staging", CsmSlotEntity(target_slot="production", preserve_vnet=True)).result()
        expect(apps.list_application_settings(RG, APP).properties.get("GREETING") == "hello-v2", "not swapped")

    @check("python: swap with preview, apply then complete (apply_slot_configuration_slot, begin_swap_slot)")
    def _():
        apps.apply_slot_configuration_slot(RG, APP, "staging", CsmSlotEntity(target_slot="production", preserve_vnet=True))
        expect(apps.get(RG, APP).slot_swap_status is not None, "no slotSwapStatus after apply")
        apps.begin_swap_slot(RG, APP, "staging", CsmSlotEntity(target_slot="production", preserve_vnet=True)).result()

    @check("python: swap with preview, apply then reset (reset_slot_configuration_slot)")
    def _():
        apps.apply_slot_configuration_slot(RG, APP, "staging", CsmSlotEntity(target_slot="production", preserve_vnet=True))
        apps.reset_slot_configuration_slot(RG, APP, "staging")
        settings = apps.list_application_settings_slot(RG, APP, "staging").properties
        expect(settings.get("SLOT_NAME") == "stage", f"{settings}")

    @check("python: a failed swap is seen as failed (warm-up fault, ARMPolling)")
    def _():
        inject(emu, {"kind": "swapWarmupFails", "app": APP})
        poller = apps.begin_swap_slot(RG, APP, "staging", CsmSlotEntity(target_slot="production", preserve_vnet=True))
        try:
            poller.result()
        except HttpResponseError as e:
            expect("WEBSITE_SWAP_WARMUP_PING_PATH" in str(e), f"unexpected error: {e}")
            return
        raise AssertionError("the failed swap was reported as a success")

    @check("python: restart, stop and start (restart_slot, stop_slot, start_slot, restart)")
    def _():
        apps.restart_slot(RG, APP, "staging")
        apps.stop_slot(RG, APP, "staging")
        expect(apps.get_slot(RG, APP, "staging").state == "Stopped", "not stopped")
        apps.start_slot(RG, APP, "staging")
        expect(apps.get_slot(RG, APP, "staging").state == "Running", "not running")
        apps.restart(RG, APP)

    @check("python: publishing credentials (begin_list_publishing_credentials_slot)")
    def _():
        user = apps.begin_list_publishing_credentials_slot(RG, APP, "staging").result()
        expect(user.publishing_user_name and user.scm_uri, f"{user}")

    @check("python: deployments (list_deployments_slot)")
    def _():
        list(apps.list_deployments_slot(RG, APP, "staging"))

    @check("python: subscriptions (GET /subscriptions and /subscriptions/{id} through the client's pipeline)")
    def _():
        from azure.core.rest import HttpRequest

        listed = web.send_request(HttpRequest("GET", f"{emu.arm}/subscriptions?api-version=2022-12-01"))
        listed.raise_for_status()
        expect(any(s["subscriptionId"] == SUB for s in listed.json()["value"]), listed.text())
        one = web.send_request(HttpRequest("GET", f"{emu.arm}/subscriptions/{SUB}?api-version=2022-12-01"))
        one.raise_for_status()
        expect(one.json()["tenantId"] == TENANT, one.text())

    @check("python: cloud metadata without a token (GET /metadata/endpoints, as az cloud register reads it)")
    def _():
        import requests

        r = requests.get(f"{emu.arm}/metadata/endpoints?api-version=2022-09-01", timeout=30)
        r.raise_for_status()
        cloud = r.json()
        expect(cloud["resourceManager"].rstrip("/") == emu.arm, r.text)
        expect(cloud["authentication"]["loginEndpoint"].rstrip("/") == emu.authority, r.text)

    vault = SecretClient(f"https://{VAULT}.vault.emulator.test:{emu.port}", secret_cred)

    @check("python: Key Vault list (list_properties_of_secrets, challenge verified)")
    def _():
        names = {p.name for p in vault.list_properties_of_secrets()}
        expect({"db-password", "api-key"} <= names, f"{names}")

    @check("python: Key Vault get (get_secret)")
    def _():
        expect(vault.get_secret("db-password").value == "s3cr3t", "value")

    @check("python: Key Vault versions (list_properties_of_secret_versions)")
    def _():
        versions = list(vault.list_properties_of_secret_versions("db-password"))
        expect(len(versions) == 3, f"{len(versions)} versions")

    @check("python: Key Vault set (set_secret)")
    def _():
        written = vault.set_secret("rotated", "new-value", content_type="text/plain")
        expect(vault.get_secret("rotated").value == "new-value" and written.properties.version, "round trip")

    @check("python: Key Vault missing secret (get_secret → ResourceNotFoundError)")
    def _():
        try:
            vault.get_secret("does-not-exist")
        except ResourceNotFoundError:
            return
        raise AssertionError("no ResourceNotFoundError")


def node_checks(emu, env, work, sp_pem, key_pem, cert_pem):
    """Runs arr.js (azure-arm-rest) and records its checks."""
    package = os.path.join(work, "package.zip")
    with zipfile.ZipFile(package, "w") as z:
        z.writestr("index.html", "v3")
    spn = emu.connection_env(SPN_CONNECTION)
    node_env = dict(env)
    node_env.update(spn)
    # A certificate connection, as the agent gives one: the same connection data with the PEM.
    cert_env = {k.replace(SPN_CONNECTION, CERT_CONNECTION): v for k, v in spn.items() if SPN_CONNECTION in k}
    auth = json.loads(cert_env[f"ENDPOINT_AUTH_{CERT_CONNECTION}"])
    auth["parameters"].pop("serviceprincipalkey", None)
    auth["parameters"]["authenticationType"] = "spnCertificate"
    auth["parameters"]["servicePrincipalCertificate"] = key_pem + cert_pem
    cert_env[f"ENDPOINT_AUTH_{CERT_CONNECTION}"] = json.dumps(auth)
    cert_env.pop(f"ENDPOINT_AUTH_PARAMETER_{CERT_CONNECTION}_SERVICEPRINCIPALKEY", None)
    cert_env[f"ENDPOINT_AUTH_PARAMETER_{CERT_CONNECTION}_AUTHENTICATIONTYPE"] = "spnCertificate"
    cert_env[f"ENDPOINT_AUTH_PARAMETER_{CERT_CONNECTION}_SERVICEPRINCIPALCERTIFICATE"] = key_pem + cert_pem
    node_env.update(cert_env)
    cert_file, key_file = os.path.join(work, "sp-cert.pem"), os.path.join(work, "sp-key.pem")
    with open(cert_file, "w") as f:
        f.write(cert_pem)
    with open(key_file, "w") as f:
        f.write(key_pem)
    node_env.update(
        {
            "CONFORM_AUTHORITY": emu.authority,
            "CONFORM_TENANT": TENANT,
            "CONFORM_CLIENT": CLIENT,
            "CONFORM_SECRET": SECRET,
            "CONFORM_CERT_PEM": cert_file,
            "CONFORM_KEY_PEM": key_file,
            "CONFORM_SPN": SPN_CONNECTION,
            "CONFORM_CERT": CERT_CONNECTION,
            "CONFORM_WIF": WIF_CONNECTION,
            "CONFORM_RG": RG,
            "CONFORM_APP": APP,
            "CONFORM_ADMIN": emu.admin,
            "CONFORM_PACKAGE": package,
            "NODE_EXTRA_CA_CERTS": emu.ca,
            # azure-pipelines-task-lib's proxy setting: azure-arm-rest, its MSAL client and
            # azure-devops-node-api all route through it.
            "AGENT_PROXYURL": emu.proxy,
            "AGENT_TEMPDIRECTORY": work,
            # The job variables azure-arm-rest reads to ask for the job's OIDC token.
            "SYSTEM_COLLECTIONURI": emu.oidc.split("/_apis/")[0].rsplit("/", 1)[0] + "/",
            "SYSTEM_TEAMPROJECTID": "web",
            "SYSTEM_HOSTTYPE": "build",
            "SYSTEM_PLANID": "00000000-0000-0000-0000-00000000a001",
            "SYSTEM_JOBID": "00000000-0000-0000-0000-00000000b001",
        }
    )
    proc = subprocess.run(
        ["node", os.path.join(HERE, "arr.js")],
        env=node_env,
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=600,
    )
    seen = False
    for line in proc.stdout.splitlines():
        m = re.match(r"^CHECK (ok|FAIL) (.*?)(?: :: (.*))?$", line)
        if not m:
            continue
        seen = True
        ok, name, detail = m.group(1) == "ok", m.group(2), m.group(3) or ""
        RESULTS.append((f"node: {name}", ok, detail))
        print(f"{'ok  ' if ok else 'FAIL'} node: {name}{'' if ok else ': ' + detail}", flush=True)
    if proc.returncode != 0 or not seen:
        RESULTS.append(("node: arr.js ran to the end", False, f"exit {proc.returncode}"))
        print(f"FAIL node: arr.js exited {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}", flush=True)
    elif os.environ.get("CONFORMANCE_VERBOSE"):
        print(proc.stderr[-4000:])


def az_checks(emu, env, work, sp_pem, az):
    """The Azure CLI, registered against the emulator as a custom cloud (no patching: its own
    `az cloud register` and `core.instance_discovery` switch, the proxy and CA from the environment)."""
    import requests

    az_env = dict(env)
    az_env.update(
        {
            "AZURE_CONFIG_DIR": os.path.join(work, "azure-cli"),
            "AZURE_CORE_COLLECT_TELEMETRY": "false",
            "AZURE_CORE_NO_COLOR": "true",
            "AZURE_CORE_ONLY_SHOW_ERRORS": "true",
        }
    )

    def run(*args, ok=True):
        p = subprocess.run([az, *args], env=az_env, capture_output=True, text=True, timeout=300)
        if ok and p.returncode != 0:
            raise AssertionError(f"az {' '.join(args[:4])} exited {p.returncode}: {p.stderr.strip()[-500:]}")
        return p

    def out(*args):
        text = run(*args, "--output", "json").stdout
        return json.loads(text) if text.strip() else None

    web = ("-g", RG, "-n", APP)

    @check("az: register the emulator as a custom cloud (az cloud register --endpoint-resource-manager)")
    def _():
        run("config", "set", "core.instance_discovery=false")
        run("cloud", "register", "-n", "SlotReleaseEmulator", "--endpoint-resource-manager", emu.arm + "/",
            "--suffix-keyvault-dns", f".vault.emulator.test:{emu.port}")
        run("cloud", "set", "-n", "SlotReleaseEmulator")

    @check("az: sign-in with a certificate (az login --service-principal --certificate)")
    def _():
        accounts = out("login", "--service-principal", "-u", CLIENT, "--certificate", sp_pem, "--tenant", TENANT)
        expect(accounts[0]["id"] == SUB, f"{accounts}")

    @check("az: sign-in with the pipelines' OIDC token (az login --federated-token, as AzureCLI@2 does)")
    def _():
        r = requests.post(
            f"{emu.oidc}?api-version=7.1&serviceConnectionId={WIF_CONNECTION}",
            headers={"Authorization": f"Bearer {SYSTEM_ACCESS_TOKEN}"},
            json={},
            timeout=30,
        )
        r.raise_for_status()
        accounts = out("login", "--service-principal", "-u", CLIENT, "--federated-token", r.json()["oidcToken"], "--tenant", TENANT)
        expect(accounts[0]["id"] == SUB, f"{accounts}")

    @check("az: sign-in with a managed identity (az login --identity, App Service endpoint)")
    def _():
        msi = emu.connection_env(MSI_CONNECTION)
        az_env["IDENTITY_ENDPOINT"], az_env["IDENTITY_HEADER"] = msi["IDENTITY_ENDPOINT"], msi["IDENTITY_HEADER"]
        try:
            accounts = out("login", "--identity", "--client-id", MANAGED_IDENTITY)
            expect(accounts[0]["id"] == SUB, f"{accounts}")
        finally:
            del az_env["IDENTITY_ENDPOINT"], az_env["IDENTITY_HEADER"]

    @check("az: sign-in with a client secret (az login --service-principal -p)")
    def _():
        accounts = out("login", "--service-principal", "-u", CLIENT, "-p", SECRET, "--tenant", TENANT)
        expect(accounts[0]["id"] == SUB and accounts[0]["tenantId"] == TENANT, f"{accounts}")

    @check("az: get site and slot (az webapp show [--slot])")
    def _():
        expect(out("webapp", "show", *web)["state"] == "Running", "state")
        expect(out("webapp", "show", *web, "--slot", "staging")["name"] == f"{APP}/staging", "slot name")

    @check("az: app settings read and write (az webapp config appsettings list/set --slot)")
    def _():
        run("webapp", "config", "appsettings", "set", *web, "--slot", "staging", "--settings", "AZ_CONFORMANCE=1")
        settings = {s["name"]: s["value"] for s in out("webapp", "config", "appsettings", "list", *web, "--slot", "staging")}
        expect(settings.get("AZ_CONFORMANCE") == "1" and settings.get("SLOT_NAME") == "stage", f"{settings}")

    @check("az: configuration read and write (az webapp config show/set --slot)")
    def _():
        run("webapp", "config", "set", *web, "--slot", "staging", "--generic-configurations", '{"healthCheckPath": "/index.html"}')
        expect(out("webapp", "config", "show", *web, "--slot", "staging")["healthCheckPath"] == "/index.html", "not set")

    @check("az: swap (az webapp deployment slot swap)")
    def _():
        run("webapp", "deployment", "slot", "swap", *web, "--slot", "staging", "--target-slot", "production")
        settings = {s["name"]: s["value"] for s in out("webapp", "config", "appsettings", "list", *web)}
        expect(settings.get("AZ_CONFORMANCE") == "1", "the swap moved nothing")

    @check("az: swap with preview: preview, then swap (--action preview, --action swap)")
    def _():
        run("webapp", "deployment", "slot", "swap", *web, "--slot", "staging", "--target-slot", "production", "--action", "preview")
        run("webapp", "deployment", "slot", "swap", *web, "--slot", "staging", "--target-slot", "production", "--action", "swap")

    @check("az: swap with preview: preview, then reset (--action preview, --action reset)")
    def _():
        run("webapp", "deployment", "slot", "swap", *web, "--slot", "staging", "--target-slot", "production", "--action", "preview")
        run("webapp", "deployment", "slot", "swap", *web, "--slot", "staging", "--target-slot", "production", "--action", "reset")

    @check("az: a failed swap is seen as failed (warm-up fault)")
    def _():
        inject(emu, {"kind": "swapWarmupFails", "app": APP})
        p = run("webapp", "deployment", "slot", "swap", *web, "--slot", "staging", "--target-slot", "production", ok=False)
        expect(p.returncode != 0, "the failed swap was reported as a success")
        expect("WEBSITE_SWAP_WARMUP_PING_PATH" in p.stderr, f"unexpected error: {p.stderr[-400:]}")

    @check("az: restart, stop and start (az webapp restart/stop/start --slot)")
    def _():
        run("webapp", "restart", *web, "--slot", "staging")
        run("webapp", "stop", *web, "--slot", "staging")
        expect(out("webapp", "show", *web, "--slot", "staging")["state"] == "Stopped", "not stopped")
        run("webapp", "start", *web, "--slot", "staging")

    @check("az: publishing credentials (az webapp deployment list-publishing-credentials --slot)")
    def _():
        expect(out("webapp", "deployment", "list-publishing-credentials", *web, "--slot", "staging")["scmUri"], "no scmUri")

    @check("az: OneDeploy (az webapp deploy --type zip --slot)")
    def _():
        package = os.path.join(work, "az-package.zip")
        with zipfile.ZipFile(package, "w") as z:
            z.writestr("index.html", "v4")
        run("webapp", "deploy", *web, "--slot", "staging", "--src-path", package, "--type", "zip", "--async", "false")

    @check("az: Key Vault list, get, versions and set (az keyvault secret list/show/list-versions/set)")
    def _():
        names = {s["name"] for s in out("keyvault", "secret", "list", "--vault-name", VAULT)}
        expect({"db-password", "api-key"} <= names, f"{names}")
        expect(out("keyvault", "secret", "show", "--vault-name", VAULT, "-n", "db-password")["value"] == "s3cr3t", "value")
        expect(len(out("keyvault", "secret", "list-versions", "--vault-name", VAULT, "-n", "db-password")) == 3, "versions")
        run("keyvault", "secret", "set", "--vault-name", VAULT, "-n", "az-written", "--value", "v")
        expect(out("keyvault", "secret", "show", "--vault-name", VAULT, "-n", "az-written")["value"] == "v", "set")

    @check("az: Key Vault missing secret (az keyvault secret show → SecretNotFound)")
    def _():
        p = run("keyvault", "secret", "show", "--vault-name", VAULT, "-n", "does-not-exist", ok=False)
        expect(p.returncode != 0 and "SecretNotFound" in p.stderr, f"exit {p.returncode}: {p.stderr[-400:]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", required=True, help="the slot-release binary")
    parser.add_argument("--skip-node", action="store_true", help="run the Python clients only")
    parser.add_argument("--az", help="an Azure CLI `az` to run against the emulator too")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="slot-release-conformance-")
    started = time.monotonic()
    emu = None
    try:
        cert_pem, key_pem, sp_pem = make_certificate(work)
        seed = write_seed(work, cert_pem)
        emu = Emulator(os.path.abspath(args.binary), seed, work)
        print(f"emulator on 127.0.0.1:{emu.port}, proxy {emu.proxy}, CA {emu.ca}", flush=True)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.upper().endswith("_PROXY") and k.upper() not in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
        }
        env.update(
            {
                "HTTPS_PROXY": emu.proxy,
                "NO_PROXY": "",
                "REQUESTS_CA_BUNDLE": emu.ca,
                "SSL_CERT_FILE": emu.ca,
                "SYSTEM_OIDCREQUESTURI": emu.oidc,
            }
        )
        os.environ.clear()
        os.environ.update(env)
        python_checks(emu, sp_pem)
        if not args.skip_node:
            node_checks(emu, env, work, sp_pem, key_pem, cert_pem)
        if args.az:
            az_checks(emu, env, work, sp_pem, os.path.abspath(args.az))
    finally:
        if emu:
            emu.stop()
        shutil.rmtree(work, ignore_errors=True)
    failed = [name for name, ok, _ in RESULTS if not ok]
    print(f"conformance: {time.monotonic() - started:.0f} s")
    print(f"{len(RESULTS) - len(failed)} passed, {len(failed)} failed")
    for name in failed:
        print(f"  failed: {name}")
    return 1 if failed or not RESULTS else 0


if __name__ == "__main__":
    sys.exit(main())
