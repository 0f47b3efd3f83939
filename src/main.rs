//! The `convene` command line: parse arguments, load settings, run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use migration::{Migrator, MigratorTrait};
use tokio_util::sync::CancellationToken;

use convene::config::Settings;
use convene::db::MigrationStep;
use convene::entities::user::Role;
use convene::Application;

// mimalloc: fewer cycles in the many small allocations of a GraphQL request than glibc's
// malloc, and freed pages go back to the system instead of staying with the process.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "convene",
    version,
    about = "Convene: public engagement on open data, as a GraphQL API"
)]
struct Cli {
    /// Folder holding default.toml and {CONVENE_ENV}.toml.
    #[arg(
        long,
        global = true,
        env = "CONVENE_CONFIG_DIR",
        default_value = "config"
    )]
    config_dir: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default), with the outbox worker inside unless jobs.enabled is false.
    Serve,
    /// Run only the background jobs (outbox delivery), e.g. beside servers that run none.
    Worker,
    /// Apply or inspect database migrations.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Write the GraphQL schema (SDL) to a file.
    ExportSchema {
        /// Where to write it.
        #[arg(long, default_value = "schema.graphql")]
        output: PathBuf,
    },
    /// Load data. `--demo` loads the UK's 2016-18 action plan commitments (idempotent).
    Seed {
        /// Load the demo commitments.
        #[arg(long)]
        demo: bool,
    },
    /// Manage accounts.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
}

#[derive(Subcommand)]
enum MigrateAction {
    /// Apply every pending migration.
    Up,
    /// Roll back the most recent migration (or --steps of them).
    Down {
        #[arg(long, default_value_t = 1)]
        steps: u32,
    },
    /// List migrations and whether each is applied.
    Status,
    /// Drop every table and migrate from scratch (destroys all data).
    Fresh,
}

#[derive(Subcommand)]
enum UserAction {
    /// Give an existing account a platform role; bootstraps the first admin.
    SetRole {
        /// The account's email address.
        #[arg(long)]
        email: String,
        /// The new role.
        #[arg(long, value_enum)]
        role: RoleArg,
    },
}

#[derive(Clone, Copy, ValueEnum)]
#[value(rename_all = "UPPER")]
enum RoleArg {
    Member,
    Organiser,
    Official,
    Admin,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Member => Role::Member,
            RoleArg::Organiser => Role::Organiser,
            RoleArg::Official => Role::Official,
            RoleArg::Admin => Role::Admin,
        }
    }
}

fn shutdown_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot listen for SIGTERM");
                        let _ = ctrl_c.await;
                        t.cancel();
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutting down: finishing in-flight requests");
        t.cancel();
    });
    token
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::ExportSchema { output } = &command {
        std::fs::write(output, convene::graphql::schema::sdl())?;
        println!("wrote {}", output.display());
        return Ok(());
    }
    let settings = Settings::load(&cli.config_dir)?;
    match command {
        Command::Serve => {
            let app = Application::build(settings).await?;
            app.run(shutdown_signal()).await
        }
        Command::Worker => {
            let app = Application::build(settings).await?;
            let stop = shutdown_signal();
            for job in app.spawn_jobs(&stop) {
                let _ = job.await;
            }
            Ok(())
        }
        Command::Migrate { action } => {
            let db = convene::db::connect(&settings.database).await?;
            let step = match action {
                MigrateAction::Up => Some(MigrationStep::Up),
                MigrateAction::Down { steps } => Some(MigrationStep::Down(steps)),
                MigrateAction::Fresh => Some(MigrationStep::Fresh),
                MigrateAction::Status => None,
            };
            if let Some(step) = step {
                convene::db::run_migrations(&db, step).await?;
            }
            for m in Migrator::get_migration_with_status(&db).await? {
                println!("{:<40} {:?}", m.name(), m.status());
            }
            Ok(())
        }
        Command::User {
            action: UserAction::SetRole { email, role },
        } => {
            let db = convene::db::connect(&settings.database).await?;
            convene::db::migrate(&db).await?;
            let ctx = convene::startup::services(std::sync::Arc::new(settings), db)?;
            let user = convene::services::accounts::set_role_by_email(&ctx, &email, role.into())
                .await
                .map_err(|e| anyhow::anyhow!(e.message()))?;
            println!("{} is now {:?}", user.email, user.role);
            Ok(())
        }
        Command::Seed { demo } => {
            anyhow::ensure!(demo, "say what to seed: --demo");
            let db = convene::db::connect(&settings.database).await?;
            convene::db::migrate(&db).await?;
            let ctx = convene::startup::services(std::sync::Arc::new(settings), db)?;
            let seeded = convene::services::seed::seed_demo(&ctx)
                .await
                .map_err(|e| anyhow::anyhow!(e.message()))?;
            println!(
                "seeded {} commitments with {} milestones ({} already there)",
                seeded.commitments, seeded.milestones, seeded.skipped
            );
            Ok(())
        }
        Command::ExportSchema { .. } => Ok(()),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    convene::telemetry::init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("convene: {e:#}");
            ExitCode::FAILURE
        }
    }
}
