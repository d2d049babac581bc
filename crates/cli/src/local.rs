//! The commands that run on a workstation: `rehearse` against the embedded emulator, and `emulator` serving
//! one for other tools.

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use slot_release_engine::stages::{self};
use slot_release_pipelines::Log;
use slot_release_rehearse::{self as rehearse};
use tokio_util::sync::CancellationToken;

use crate::args::{EmulatorArgs, RehearseArgs};
use crate::load::{config_dir, load};
use crate::run::{release_slot, report};

pub(crate) async fn rehearse_cmd(
    args: &RehearseArgs,
    log: &Log,
    cancel: CancellationToken,
) -> Result<ExitCode> {
    let mut loaded = load(&args.common, None, false, log)?;
    args.overrides.apply(&mut loaded, log)?;
    let temp;
    let work_dir = match &args.work_dir {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::tempdir().context("cannot create a temporary folder")?;
            temp.path().to_path_buf()
        }
    };
    let options = rehearse::RehearseOptions {
        config_dir: config_dir(&args.common.config),
        work_dir: work_dir.clone(),
        fail_at: args.fail_at,
        quick: args.quick,
    };
    let outcome = rehearse::run(&loaded, &options, log, cancel).await?;
    report(
        log,
        &outcome.record,
        release_slot(&loaded, &outcome.record, None).as_ref(),
        args.record.as_deref(),
        &work_dir,
        args.common.json,
        &stages::SummaryContext {
            rehearsal: true,
            portal_url: None,
        },
    )?;
    log.info(&outcome.story);
    Ok(if outcome.as_expected {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub(crate) async fn emulator_cmd(
    args: &EmulatorArgs,
    log: &Log,
    stop: &CancellationToken,
) -> Result<ExitCode> {
    let mut seed = match &args.seed {
        Some(path) => slot_release_emulator::Seed::from_file(path)?,
        None => slot_release_emulator::Seed::sample(),
    };
    if let Some(style) = args.host_names {
        seed.host_name_style = style;
    }
    let work_dir = match &args.work_dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("slot-release-emulator-{}", std::process::id())),
    };
    let mut opts = slot_release_emulator::EmulatorOptions::new(seed, work_dir);
    opts.port = args.port;
    opts.runtime_path = args.runtime_path.clone();
    opts.python_packages = args.python_packages.clone();
    opts.npm_cache = args.npm_cache.clone();
    let image_dir = match &args.image_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_dir().context("read the current directory")?,
    };
    for mapping in &args.images {
        let Some((pattern, command)) = mapping
            .split_once('=')
            .filter(|(p, c)| !p.trim().is_empty() && !c.trim().is_empty())
        else {
            anyhow::bail!(
                "--image {mapping:?} is not PATTERN=COMMAND (e.g. 'contoso.azurecr.io/contoso/app:*=python3 app.py')"
            );
        };
        opts.images.push(slot_release_emulator::ImageMapping {
            pattern: pattern.trim().to_owned(),
            command: command.trim().to_owned(),
            dir: image_dir.clone(),
        });
    }
    let emulator = slot_release_emulator::Emulator::start(opts).await?;
    // Signals were registered before the start: whoever reads the endpoints may signal at once.
    log.print_document(&emulator.connection_summary());
    stop.cancelled().await;
    emulator.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
