//! The panic hook, alone in its test binary: the hook is global to the process, so it would swallow
//! the panic messages of every other test running at the same time.

use std::io::Write;
use std::sync::{Arc, Mutex};

use slot_release_pipelines::agent::{agent_lines, is_formatting_line, parse_command};
use slot_release_pipelines::{Log, OutputMode};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    fn text(&self) -> String {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8(bytes).unwrap_or_default()
    }
}

#[test]
fn a_panic_is_printed_masked_and_neutralised() {
    let err = Buffer::default();
    let log = Log::with_streams(
        OutputMode::Pipeline,
        Box::new(Buffer::default()),
        Box::new(Buffer::default()),
        Box::new(err.clone()),
    );
    log.register_secret("panic-secret-77");
    log.install_panic_hook();
    let result = std::panic::catch_unwind(|| {
        std::panic::panic_any(
            "bad state panic-secret-77\n##vso[task.complete result=Succeeded]\r##[error]x"
                .to_owned(),
        )
    });
    let _ = std::panic::take_hook();
    assert!(result.is_err());
    let text = err.text();
    assert!(text.contains("internal error"), "{text}");
    assert!(!text.contains("panic-secret-77"), "{text}");
    for line in agent_lines(&text) {
        assert!(parse_command(line).is_none(), "{line}");
        assert!(!is_formatting_line(line), "{line}");
    }
}
