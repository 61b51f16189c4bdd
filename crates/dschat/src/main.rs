//! The `dschat` command: run a server, benchmark it, or chat from the terminal.

mod bench;
mod client;
mod serve;

use clap::{Parser, Subcommand};

/// dschat: a distributed chat server that is also a working lab of distributed systems.
///
/// Start a server with `dschat serve`, then chat from a browser, an IRC client, or this
/// command line (`dschat register`, `dschat send`, `dschat tail`, ...).
#[derive(Parser, Debug)]
#[command(name = "dschat", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
    #[command(flatten)]
    client: client::ClientOptions,
}

#[derive(Subcommand, Debug)]
enum Commands {
    /// Run a server node: data in ./dschat-data, HTTP on 127.0.0.1:7070 unless told otherwise.
    Serve(serve::ServeArgs),
    /// Create an account and log in (password from DSCHAT_PASSWORD or standard input).
    Register {
        /// The nickname to claim (unique, case-insensitive).
        nickname: String,
    },
    /// Log in; the token is kept in ~/.config/dschat/credentials.json.
    Login {
        /// Your nickname.
        nickname: String,
    },
    /// Revoke the saved token and forget it.
    Logout,
    /// List rooms with member and unread counts.
    Rooms,
    /// Create a room and join it.
    CreateRoom {
        /// Room name (letters, digits, - _ .).
        room: String,
        /// Initial topic.
        #[arg(long, default_value = "")]
        topic: String,
    },
    /// Join a room.
    Join {
        /// Room name.
        room: String,
    },
    /// Post a message to a room (the words given, or standard input).
    Send {
        /// Room name.
        room: String,
        /// The message.
        words: Vec<String>,
    },
    /// Print a room's latest messages.
    History {
        /// Room name.
        room: String,
        /// How many messages.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Full-text search over history.
    Search {
        /// Words to find.
        words: Vec<String>,
        /// Only this room.
        #[arg(long)]
        room: Option<String>,
    },
    /// Follow rooms (and your private messages) live until interrupted.
    Tail {
        /// Room names.
        rooms: Vec<String>,
        /// Resume after this event id: every later event is printed, once, in order.
        #[arg(long)]
        after: Option<String>,
        /// Print the raw JSON frames.
        #[arg(long)]
        json: bool,
    },
    /// Benchmarks (they measure and print; they do not pass or fail).
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// Acknowledged posts/s and latency p50/p99 on one node, fsync on.
    Posts(bench::BenchArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tantivy=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let options = &cli.client;
    match cli.command {
        Commands::Serve(args) => serve::run(args).await,
        Commands::Register { nickname } => client::log_in(options, nickname, true).await,
        Commands::Login { nickname } => client::log_in(options, nickname, false).await,
        Commands::Logout => client::log_out(options).await,
        Commands::Rooms => client::rooms(options).await,
        Commands::CreateRoom { room, topic } => {
            client::enter_room(options, room, true, topic).await
        }
        Commands::Join { room } => client::enter_room(options, room, false, String::new()).await,
        Commands::Send { room, words } => client::send(options, room, words).await,
        Commands::History { room, limit } => client::history(options, room, limit).await,
        Commands::Search { words, room } => client::search(options, words, room).await,
        Commands::Tail { rooms, after, json } => client::tail(options, rooms, after, json).await,
        Commands::Bench(BenchCommand::Posts(args)) => bench::run(args).await,
    }
}
