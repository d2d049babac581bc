//! Validated newtypes used by the release config: names with Azure naming rules and human durations.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ConfigError;

/// Defines a validated string newtype: construction goes through `new`, which applies `$check`,
/// and deserialization goes through the same check so an invalid value never exists.
macro_rules! name_newtype {
    (
        $(#[$meta:meta])*
        $ty:ident, kind = $kind:literal, check = $check:path,
        pattern = $pattern:literal, min = $min:literal, max = $max:literal,
        description = $description:literal
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $ty(String);

        impl $ty {
            /// The kind of name, as used in messages.
            pub const KIND: &'static str = $kind;
            /// The regular expression the JSON Schema uses for it.
            pub const PATTERN: &'static str = $pattern;

            /// Validates `value` and wraps it.
            pub fn new(value: impl Into<String>) -> Result<Self, ConfigError> {
                let value = value.into();
                match $check(&value) {
                    Ok(()) => Ok(Self(value)),
                    Err(reason) => Err(ConfigError::InvalidName {
                        kind: $kind,
                        value,
                        reason: reason.to_string(),
                    }),
                }
            }

            /// The name as written.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $ty {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $ty {
            type Err = ConfigError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = String::deserialize(deserializer)?;
                Self::new(value).map_err(serde::de::Error::custom)
            }
        }

        impl JsonSchema for $ty {
            fn schema_name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($ty))
            }

            fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "type": "string",
                    "description": $description,
                    "pattern": $pattern,
                    "minLength": $min,
                    "maxLength": $max,
                })
            }
        }
    };
}

fn all_chars(value: &str, ok: impl Fn(char) -> bool) -> bool {
    value.chars().all(ok)
}

fn check_length(value: &str, min: usize, max: usize) -> Result<(), String> {
    let len = value.chars().count();
    if len < min || len > max {
        return Err(format!("must be {min} to {max} characters long, not {len}"));
    }
    Ok(())
}

fn check_slot_name(value: &str) -> Result<(), String> {
    check_length(value, 1, 59)?;
    if !all_chars(value, |c| c.is_ascii_alphanumeric() || c == '-') {
        return Err("App Service slot names use only letters, digits and `-`".into());
    }
    if value.starts_with('-') || value.ends_with('-') {
        return Err("App Service slot names do not start or end with `-`".into());
    }
    Ok(())
}

fn check_vault_name(value: &str) -> Result<(), String> {
    check_length(value, 3, 24)?;
    if !all_chars(value, |c| c.is_ascii_alphanumeric() || c == '-') {
        return Err("Key Vault names use only letters, digits and `-`".into());
    }
    if !value.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err("Key Vault names start with a letter".into());
    }
    if value.ends_with('-') || value.contains("--") {
        return Err("Key Vault names do not end with `-` or contain `--`".into());
    }
    Ok(())
}

fn check_secret_name(value: &str) -> Result<(), String> {
    check_length(value, 1, 127)?;
    if !all_chars(value, |c| c.is_ascii_alphanumeric() || c == '-') {
        return Err("Key Vault secret names use only letters, digits and `-` (no `_`)".into());
    }
    Ok(())
}

fn check_setting_name(value: &str) -> Result<(), String> {
    check_length(value, 1, 256)?;
    if !all_chars(value, |c| {
        c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
    }) {
        return Err("app setting names use only letters, digits, `_`, `.` and `-`".into());
    }
    Ok(())
}

fn check_connection_string_name(value: &str) -> Result<(), String> {
    check_length(value, 1, 256)?;
    if !all_chars(value, |c| {
        c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
    }) {
        return Err("connection string names use only letters, digits, `_`, `.` and `-`".into());
    }
    Ok(())
}

fn check_identifier(value: &str) -> Result<(), String> {
    check_length(value, 1, 64)?;
    if !all_chars(value, |c| {
        c.is_ascii_alphanumeric() || matches!(c, '_' | '-')
    }) {
        return Err("use only letters, digits, `_` and `-`".into());
    }
    if !value.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err("start with a letter".into());
    }
    Ok(())
}

name_newtype!(
    /// The name of an App Service deployment slot; `production` means the production slot.
    SlotName, kind = "slot name", check = check_slot_name,
    pattern = "^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$", min = 1, max = 59,
    description = "An App Service slot name: letters, digits and `-`, not starting or ending with `-`. `production` means the production slot."
);

name_newtype!(
    /// The name of an Azure Key Vault (the first label of its host name).
    VaultName, kind = "Key Vault name", check = check_vault_name,
    pattern = "^[A-Za-z](?:-?[A-Za-z0-9])+$", min = 3, max = 24,
    description = "A Key Vault name: 3 to 24 letters, digits and `-`, starting with a letter, without `--` and not ending with `-`."
);

name_newtype!(
    /// The name of a Key Vault secret.
    SecretName, kind = "Key Vault secret name", check = check_secret_name,
    pattern = "^[A-Za-z0-9-]{1,127}$", min = 1, max = 127,
    description = "A Key Vault secret name: 1 to 127 letters, digits and `-`."
);

name_newtype!(
    /// The name of an App Service application setting (an environment variable of the app).
    SettingName, kind = "setting name", check = check_setting_name,
    pattern = "^[A-Za-z0-9_.-]{1,256}$", min = 1, max = 256,
    description = "An app setting name: letters, digits, `_`, `.` and `-`."
);

name_newtype!(
    /// The name of an App Service connection string (the app sees it as an environment variable with
    /// its type's prefix, e.g. `SQLAZURECONNSTR_Db`).
    ConnectionStringName, kind = "connection string name", check = check_connection_string_name,
    pattern = "^[A-Za-z0-9_.-]{1,256}$", min = 1, max = 256,
    description = "A connection string name: letters, digits, `_`, `.` and `-`."
);

name_newtype!(
    /// The name of a hook, unique within its stage.
    HookName, kind = "hook name", check = check_identifier,
    pattern = "^[A-Za-z][A-Za-z0-9_-]{0,63}$", min = 1, max = 64,
    description = "A hook name: a letter, then letters, digits, `_` and `-` (at most 64)."
);

name_newtype!(
    /// The name of an environment in `environments`.
    EnvironmentName, kind = "environment name", check = check_identifier,
    pattern = "^[A-Za-z][A-Za-z0-9_-]{0,63}$", min = 1, max = 64,
    description = "An environment name: a letter, then letters, digits, `_` and `-` (at most 64)."
);

impl SlotName {
    /// The production slot, spelled the one way plans, state files and the journal write it.
    pub fn production() -> Self {
        Self("production".to_owned())
    }

    /// Whether this names the production slot (App Service treats `production` case-insensitively).
    pub fn is_production(&self) -> bool {
        self.0.eq_ignore_ascii_case("production")
    }
}

// Comparisons with text are exact (like the derived `Eq`, so `Borrow<str>` lookups agree with them);
// `is_production` is the case-insensitive question.
impl PartialEq<str> for SlotName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for SlotName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<SlotName> for str {
    fn eq(&self, other: &SlotName) -> bool {
        self == other.0
    }
}

impl PartialEq<SlotName> for &str {
    fn eq(&self, other: &SlotName) -> bool {
        *self == other.0
    }
}

/// A Key Vault secret reference: `name` or `name/version`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SecretRef {
    name: SecretName,
    version: Option<String>,
}

impl SecretRef {
    /// Parses `name` or `name/version` (a version is 32 hexadecimal digits).
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let (name, version) = match text.split_once('/') {
            Some((name, version)) => (name, Some(version)),
            None => (text, None),
        };
        let name = SecretName::new(name)?;
        if let Some(version) = version
            && (version.len() != 32 || !version.chars().all(|c| c.is_ascii_hexdigit()))
        {
            return Err(ConfigError::InvalidName {
                kind: "Key Vault secret version",
                value: version.to_string(),
                reason: "a secret version is 32 hexadecimal digits".into(),
            });
        }
        Ok(Self {
            name,
            version: version.map(str::to_string),
        })
    }

    /// The secret's name.
    pub fn name(&self) -> &SecretName {
        &self.name
    }

    /// The pinned version, if any; `None` means the latest version.
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version {
            Some(version) => write!(f, "{}/{version}", self.name),
            None => write!(f, "{}", self.name),
        }
    }
}

impl Serialize for SecretRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for SecretRef {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("SecretRef")
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A Key Vault secret name (letters, digits and `-`), optionally followed by `/` and a 32-digit hexadecimal version.",
            "pattern": "^[A-Za-z0-9-]{1,127}(/[0-9A-Fa-f]{32})?$",
        })
    }
}

/// A duration written for people: one or more `<number><unit>` parts, units `ms`, `s`, `m`, `h`
/// (`30s`, `5m`, `1h30m`, `500ms`). Zero is representable so that validation can report it with
/// its location rather than failing the whole parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(std::time::Duration);

impl Duration {
    /// Parses the human form.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let invalid = |reason: &str| ConfigError::InvalidDuration {
            value: text.to_string(),
            reason: reason.to_string(),
        };
        if text.is_empty() {
            return Err(invalid(
                "a duration cannot be empty; write e.g. `30s` or `5m`",
            ));
        }
        let mut total = std::time::Duration::ZERO;
        let mut rest = text;
        while !rest.is_empty() {
            let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            if digits == 0 {
                return Err(invalid(
                    "expected a number followed by a unit (`ms`, `s`, `m` or `h`), e.g. `30s`",
                ));
            }
            let number: u64 = rest[..digits]
                .parse()
                .map_err(|_| invalid("the number is too large"))?;
            rest = &rest[digits..];
            if rest.starts_with(char::is_whitespace) {
                return Err(invalid(
                    "write the number and its unit together, without spaces (e.g. `30s`, `5m`)",
                ));
            }
            let unit_len = rest.len()
                - rest
                    .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                    .len();
            let millis_per_unit = match &rest[..unit_len] {
                "ms" => 1,
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "" => return Err(invalid("a unit is missing; write e.g. `30s` or `5m`")),
                _ => return Err(invalid("the unit must be `ms`, `s`, `m` or `h`")),
            };
            rest = &rest[unit_len..];
            let millis = number
                .checked_mul(millis_per_unit)
                .ok_or_else(|| invalid("the duration is too large"))?;
            total = total
                .checked_add(std::time::Duration::from_millis(millis))
                .ok_or_else(|| invalid("the duration is too large"))?;
        }
        Ok(Self(total))
    }

    /// Builds a duration from a standard one.
    pub const fn from_std(duration: std::time::Duration) -> Self {
        Self(duration)
    }

    /// Builds a duration of whole seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(std::time::Duration::from_secs(secs))
    }

    /// The standard duration.
    pub const fn as_std(&self) -> std::time::Duration {
        self.0
    }

    /// Whether the duration is zero (which validation rejects).
    pub const fn is_zero(&self) -> bool {
        self.0.is_zero()
    }
}

impl From<Duration> for std::time::Duration {
    fn from(value: Duration) -> Self {
        value.0
    }
}

impl fmt::Display for Duration {
    /// Writes the shortest human form that parses back to the same value, e.g. `1h30m`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut millis = self.0.as_millis();
        if millis == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [("h", 3_600_000u128), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
            if millis >= size {
                write!(f, "{}{unit}", millis / size)?;
                millis %= size;
            }
        }
        Ok(())
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("Duration")
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A duration: one or more `<number><unit>` parts with units `ms`, `s`, `m`, `h`, e.g. `30s`, `5m`, `1h30m`.",
            "pattern": "^([0-9]+(ms|s|m|h))+$",
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn names_follow_azure_rules() {
        assert!(SlotName::new("staging").is_ok());
        assert!(SlotName::new("blue-2").is_ok());
        assert!(SlotName::new("staging_1").is_err());
        assert!(SlotName::new("-staging").is_err());
        assert!(SlotName::new("").is_err());
        assert!(SlotName::new("Production").is_ok_and(|s| s.is_production()));
        assert!(SlotName::production().is_production());
        assert_eq!(SlotName::production(), "production");
        assert!("staging" == SlotName::new("staging").unwrap());
        assert!(SlotName::new("Staging").unwrap() != "staging");
        assert!(VaultName::new("contoso-kv").is_ok());
        assert!(VaultName::new("kv").is_err());
        assert!(VaultName::new("1kv-contoso").is_err());
        assert!(VaultName::new("contoso--kv").is_err());
        assert!(SecretName::new("db-password").is_ok());
        assert!(SecretName::new("db_password").is_err());
        assert!(SecretName::new("a".repeat(128)).is_err());
        assert!(SettingName::new("Logging__LogLevel.Default").is_ok());
        assert!(SettingName::new("APP ENV").is_err());
        assert!(HookName::new("migrate-db").is_ok());
        assert!(HookName::new("1migrate").is_err());
    }

    #[test]
    fn secret_refs_take_an_optional_version() {
        let pinned = SecretRef::parse("db-password/0123456789abcdef0123456789abcdef");
        assert!(pinned.is_ok_and(|r| r.version() == Some("0123456789abcdef0123456789abcdef")));
        assert!(SecretRef::parse("db-password").is_ok_and(|r| r.version().is_none()));
        assert!(SecretRef::parse("db-password/latest").is_err());
    }

    #[test]
    fn durations_parse_human_forms() {
        let parse = |text: &str| Duration::parse(text).map(|d| d.as_std());
        assert_eq!(parse("30s").ok(), Some(std::time::Duration::from_secs(30)));
        assert_eq!(
            parse("1h30m").ok(),
            Some(std::time::Duration::from_secs(5400))
        );
        assert_eq!(
            parse("500ms").ok(),
            Some(std::time::Duration::from_millis(500))
        );
        assert!(parse("5").is_err());
        assert!(parse("5 m").is_err());
        assert!(parse("5min").is_err());
        assert!(parse("m5").is_err());
        assert!(parse("").is_err());
        assert!(parse("99999999999999999999h").is_err());
    }

    proptest! {
        #[test]
        fn durations_round_trip_through_display(millis in 0u64..10_000_000_000) {
            let duration = Duration::from_std(std::time::Duration::from_millis(millis));
            let text = duration.to_string();
            prop_assert_eq!(Duration::parse(&text).ok(), Some(duration), "{}", text);
        }
    }
}
