//! `catalog-local`: runs catalog-sync on this machine (`up`) and pokes at it (every other
//! command), against the endpoints the running stack wrote to `.local/stack.json`.

mod args;
mod commands;
mod up;

use std::path::Path;

use anyhow::{Context, Result};

use args::{Args, USAGE};

fn main() -> Result<()> {
    let mut words: Vec<String> = std::env::args().skip(1).collect();
    if words.is_empty() || matches!(words[0].as_str(), "-h" | "--help" | "help") {
        print!("{USAGE}");
        return Ok(());
    }
    let command = words.remove(0);
    let args = Args(words);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let root = catalog_local::workspace_root();
    runtime.block_on(async {
        match command.as_str() {
            "up" => up::up(&root, args).await,
            "metrics" => commands::metrics(&root, args),
            "revalidate-key" => commands::revalidate_key(args),
            _ => commands::run(&root, &command, args).await,
        }
    })
}

fn status_path(root: &Path) -> std::path::PathBuf {
    catalog_local::local_dir(root).join("status.json")
}

/// `path` opened for appending, so the stack and a CLI command can both write to it.
fn append(path: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {path:?}"))
}
