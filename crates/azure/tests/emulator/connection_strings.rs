//! Connection strings through ARM: listed per slot, changed by a read-modify-write of the whole map
//! (the PUT replaces it), and their sticky names written without disturbing the app-setting names.

use super::*;
use slot_release_azure::{ConnectionString, ConnectionStringsChange, StickyKind};

fn cs(value: &str, kind: &str) -> ConnectionString {
    ConnectionString {
        value: value.into(),
        kind: kind.into(),
    }
}

#[tokio::test]
async fn connection_strings_read_modify_write_keeps_the_others() {
    let env = start().await;
    let web = azure(&env).web_app(&app_ref());
    let s = slot("staging");
    let none = CancellationToken::new();
    let first = ConnectionStringsChange {
        set: BTreeMap::from([
            ("Db".into(), cs("Server=db;Password=p1", "SQLAzure")),
            ("Cache".into(), cs("cache:6380,password=p2", "RedisCache")),
        ]),
        remove: BTreeSet::new(),
    };
    web.update_connection_strings(&s, &first, &none)
        .await
        .expect("first write");
    let second = ConnectionStringsChange {
        set: BTreeMap::from([("Bus".into(), cs("Endpoint=sb://bus/", "ServiceBus"))]),
        remove: BTreeSet::from(["Cache".into()]),
    };
    let written = web
        .update_connection_strings(&s, &second, &none)
        .await
        .expect("second write");
    assert_eq!(
        written,
        BTreeMap::from([
            ("Bus".to_owned(), cs("Endpoint=sb://bus/", "ServiceBus")),
            ("Db".to_owned(), cs("Server=db;Password=p1", "SQLAzure")),
        ])
    );
    assert_eq!(
        web.connection_strings(&s, &none).await.expect("read back"),
        written
    );
    // The emulator holds them typed, so the body had ARM's shape and type names.
    let snap = env.em.snapshot();
    let live = &snap.slot(APP, "staging").expect("slot").connection_strings;
    assert_eq!(live["Db"].kind.as_str(), "SQLAzure");
    assert_eq!(live["Bus"].value, "Endpoint=sb://bus/");
    assert!(!live.contains_key("Cache"));
    // The app settings and production were not touched.
    assert!(
        snap.slot(APP, "staging")
            .expect("slot")
            .app_settings
            .is_empty()
    );
    assert!(
        snap.slot(APP, "production")
            .expect("prod")
            .connection_strings
            .is_empty()
    );
}

#[tokio::test]
async fn a_change_that_changes_nothing_sends_nothing() {
    let env = start().await;
    let web = azure(&env).web_app(&app_ref());
    let s = slot("staging");
    let none = CancellationToken::new();
    let change = ConnectionStringsChange {
        set: BTreeMap::from([("Db".into(), cs("Server=db", "SQLServer"))]),
        remove: BTreeSet::from(["Absent".into()]),
    };
    web.update_connection_strings(&s, &change, &none)
        .await
        .expect("write");
    env.em.clear_requests();
    web.update_connection_strings(&s, &change, &none)
        .await
        .expect("again");
    let puts: Vec<String> = env
        .em
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .map(|r| r.path)
        .collect();
    assert_eq!(puts, Vec::<String>::new());
}

#[tokio::test]
async fn a_type_arm_refuses_is_an_error_and_nothing_is_written() {
    let env = start().await;
    let web = azure(&env).web_app(&app_ref());
    let s = slot("staging");
    let change = ConnectionStringsChange {
        set: BTreeMap::from([("Db".into(), cs("Server=db", "Oracle"))]),
        remove: BTreeSet::new(),
    };
    let err = web
        .update_connection_strings(&s, &change, &CancellationToken::new())
        .await
        .expect_err("ARM refuses the type");
    assert_eq!(err.status(), Some(400), "{err}");
    assert!(
        env.em
            .snapshot()
            .slot(APP, "staging")
            .expect("slot")
            .connection_strings
            .is_empty()
    );
}

#[tokio::test]
async fn sticky_connection_string_names_leave_the_setting_names_alone_and_back() {
    let env = start().await;
    let web = azure(&env).web_app(&app_ref());
    let none = CancellationToken::new();
    let set = |names: &[&str]| {
        names
            .iter()
            .map(|n| (*n).to_owned())
            .collect::<BTreeSet<_>>()
    };
    web.update_sticky_names(
        StickyKind::AppSettings,
        &set(&["APP_ENV", "B"]),
        &set(&[]),
        &none,
    )
    .await
    .expect("stick settings");
    web.update_sticky_names(
        StickyKind::ConnectionStrings,
        &set(&["Db", "Cache"]),
        &set(&[]),
        &none,
    )
    .await
    .expect("stick connection strings");
    let names = web
        .update_sticky_names(StickyKind::AppSettings, &set(&[]), &set(&["B"]), &none)
        .await
        .expect("unstick a setting");
    assert_eq!(names.app_setting_names, ["APP_ENV"]);
    assert_eq!(names.connection_string_names, ["Cache", "Db"]);
    let names = web
        .update_sticky_names(
            StickyKind::ConnectionStrings,
            &set(&["Bus"]),
            &set(&["Cache"]),
            &none,
        )
        .await
        .expect("change connection strings");
    assert_eq!(names.connection_string_names, ["Db", "Bus"]);
    assert_eq!(names.app_setting_names, ["APP_ENV"]);
    // What ARM holds, read afresh.
    let live = web.slot_config_names(&none).await.expect("read");
    assert_eq!(live, names);
}
