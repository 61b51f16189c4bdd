//! The `dschat` command: run a server, benchmark it, or chat from the terminal.

mod bench;
mod bench_cluster;
mod bench_irc;
mod client;
mod cluster;
mod lab;
mod serve;
mod sim;

use clap::{Parser, Subcommand};

/// dschat: a chat server built as a working lab of distributed systems.
///
/// Start a server with `dschat serve`, then chat over its HTTP/WebSocket API, from any IRC
/// client, or from this command line (`dschat register`, `dschat send`, `dschat tail`, ...).
/// The client commands talk to --server (or $DSCHAT_SERVER, or the server you logged in to).
#[derive(Parser, Debug)]
#[command(name = "dschat", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand, Debug)]
enum Commands {
    /// Run a server node: data in ./dschat-data, HTTP on 127.0.0.1:7070, IRC on 127.0.0.1:6667
    /// unless told otherwise.
    Serve(serve::ServeArgs),
    /// Create an account and log in (password from DSCHAT_PASSWORD or standard input).
    Register {
        #[command(flatten)]
        client: client::ClientOptions,
        /// The nickname to claim (unique, case-insensitive).
        nickname: String,
    },
    /// Log in; the token is kept in ~/.config/dschat/credentials.json.
    Login {
        #[command(flatten)]
        client: client::ClientOptions,
        /// Your nickname.
        nickname: String,
    },
    /// Revoke the saved token and forget it.
    Logout {
        #[command(flatten)]
        client: client::ClientOptions,
    },
    /// List rooms with member and unread counts.
    Rooms {
        #[command(flatten)]
        client: client::ClientOptions,
    },
    /// Create a room and join it.
    CreateRoom {
        #[command(flatten)]
        client: client::ClientOptions,
        /// Room name (letters, digits, - _ .).
        room: String,
        /// Initial topic.
        #[arg(long, default_value = "")]
        topic: String,
    },
    /// Join a room.
    Join {
        #[command(flatten)]
        client: client::ClientOptions,
        /// Room name.
        room: String,
    },
    /// Post a message to a room (the words given, or standard input).
    Send {
        #[command(flatten)]
        client: client::ClientOptions,
        /// Room name.
        room: String,
        /// The message.
        words: Vec<String>,
    },
    /// Print a room's latest messages.
    History {
        #[command(flatten)]
        client: client::ClientOptions,
        /// Room name.
        room: String,
        /// How many messages.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Full-text search over history.
    Search {
        #[command(flatten)]
        client: client::ClientOptions,
        /// Words to find.
        words: Vec<String>,
        /// Only this room.
        #[arg(long)]
        room: Option<String>,
    },
    /// Follow rooms (and your private messages) live until interrupted.
    Tail {
        #[command(flatten)]
        client: client::ClientOptions,
        /// Room names.
        rooms: Vec<String>,
        /// Resume after this event id: every later event is printed, once, in order.
        #[arg(long)]
        after: Option<String>,
        /// Print the raw JSON frames.
        #[arg(long)]
        json: bool,
    },
    /// Start a local cluster on loopback ports (node i: HTTP on 7070+i) with a dashboard and
    /// fault controls (crash, pause, cut links, skew clocks) at http://127.0.0.1:7070/lab;
    /// Ctrl-C stops it.
    Lab(lab::LabArgs),
    /// Look at or change a running cluster: status, add, remove, transfer-leader.
    Cluster {
        #[command(flatten)]
        options: cluster::ClusterOptions,
        #[command(subcommand)]
        command: cluster::ClusterCommand,
    },
    /// Run a whole cluster in one thread, in simulated time, under random faults from a seed,
    /// and check what its clients saw (linearizability, lost or duplicated messages, feeds).
    Sim(sim::SimArgs),
    /// Benchmarks (they measure and print; they do not pass or fail).
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// Acknowledged posts/s and latency p50/p99 on one node, fsync on.
    Posts(bench::BenchArgs),
    /// A 3-node dschat cluster against a 3-node etcd cluster on this machine: writes/s,
    /// latency percentiles, and the failover window after kill -9 of the leader.
    Cluster(bench_cluster::ClusterBenchArgs),
    /// One IRC channel, many clients, a few senders: delivered lines/s and latency p50/p99
    /// against any IRC server (scripts/bench-irc compares dschat, inspircd and ngircd).
    Irc(bench_irc::BenchIrcArgs),
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
    match Cli::parse().command {
        Commands::Serve(args) => serve::run(args).await,
        Commands::Register { client, nickname } => client::log_in(&client, nickname, true).await,
        Commands::Login { client, nickname } => client::log_in(&client, nickname, false).await,
        Commands::Logout { client } => client::log_out(&client).await,
        Commands::Rooms { client } => client::rooms(&client).await,
        Commands::CreateRoom {
            client,
            room,
            topic,
        } => client::enter_room(&client, room, true, topic).await,
        Commands::Join { client, room } => {
            client::enter_room(&client, room, false, String::new()).await
        }
        Commands::Send {
            client,
            room,
            words,
        } => client::send(&client, room, words).await,
        Commands::History {
            client,
            room,
            limit,
        } => client::history(&client, room, limit).await,
        Commands::Search {
            client,
            words,
            room,
        } => client::search(&client, words, room).await,
        Commands::Tail {
            client,
            rooms,
            after,
            json,
        } => client::tail(&client, rooms, after, json).await,
        Commands::Bench(BenchCommand::Posts(args)) => bench::run(args).await,
        Commands::Bench(BenchCommand::Cluster(args)) => bench_cluster::run(args).await,
        Commands::Lab(args) => lab::run(args).await,
        Commands::Cluster { options, command } => cluster::run(options, command).await,
        Commands::Bench(BenchCommand::Irc(args)) => bench_irc::run(args).await,
        Commands::Sim(args) => tokio::task::block_in_place(|| sim::run(args)),
    }
}
