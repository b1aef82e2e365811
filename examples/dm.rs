//! A command line over the inbox, on a SQLite file:
//!
//! ```text
//! cargo run --example dm -- --db chat.db send 1 2 "Lunch?"
//! cargo run --example dm -- --db chat.db inbox 2
//! cargo run --example dm -- --db chat.db thread 2 1 --limit 20
//! cargo run --example dm -- --db chat.db read 2 1
//! cargo run --example dm -- --db chat.db search 2 lunch
//! ```
//!
//! Exit codes: 0 done; 2 bad usage; 65 the input was refused (empty, too long, to
//! oneself, a search without a word, …); 66 no such message; 77 not allowed (not yours,
//! blocked, too late to edit); 74 the database failed.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use diesel::{Connection, SqliteConnection};
use directmessages::{
    ConversationQuery, ConversationsQuery, Error, Inbox, Message, MessageId, SearchQuery, UserId,
};

#[derive(Parser)]
#[command(
    name = "dm",
    about = "Direct messages between the users of an app, on a SQLite file"
)]
struct Cli {
    /// The SQLite file (created and migrated if needed).
    #[arg(long, default_value = "chat.db")]
    db: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sends TEXT from FROM to TO.
    Send {
        from: UserId,
        to: UserId,
        text: String,
    },
    /// USER's conversations, latest first, with unread counts.
    Inbox {
        user: UserId,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// The archived conversations instead.
        #[arg(long)]
        archived: bool,
    },
    /// The latest messages between USER and PARTNER, oldest first.
    Thread {
        user: UserId,
        partner: UserId,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Marks what USER received in it as read.
        #[arg(long)]
        mark_read: bool,
    },
    /// Shows message ID to USER, marking it read if USER received it.
    Read { user: UserId, id: MessageId },
    /// USER's unread messages.
    Unread { user: UserId },
    /// USER's messages holding every word of TEXT, newest first.
    Search {
        user: UserId,
        text: String,
        /// Only the conversation with this user.
        #[arg(long)]
        with: Option<UserId>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Replaces the text of USER's message ID.
    Edit {
        user: UserId,
        id: MessageId,
        text: String,
    },
    /// Removes USER's message ID for both sides.
    Unsend { user: UserId, id: MessageId },
    /// Hides message ID from USER.
    Delete { user: UserId, id: MessageId },
    /// USER blocks OTHER.
    Block { user: UserId, other: UserId },
    /// USER unblocks OTHER.
    Unblock { user: UserId, other: UserId },
    /// Deletes everything of USER.
    Purge { user: UserId },
}

/// A message as a table row.
fn row(m: &Message) -> String {
    let read = match m.read_at {
        Some(at) => format!("read {}", at.format("%H:%M")),
        None => "unread".to_owned(),
    };
    let edited = if m.edited_at.is_some() {
        " (edited)"
    } else {
        ""
    };
    format!(
        "{:>6}  {:>5} → {:<5}  {}  {:<11}  {}{edited}",
        m.id,
        m.sender_id,
        m.recipient_id,
        m.sent_at.format("%Y-%m-%d %H:%M"),
        read,
        m.content
    )
}

fn table(messages: &[Message]) {
    if messages.is_empty() {
        println!("(no messages)");
        return;
    }
    println!(
        "{:>6}  {:>5}   {:<5}  {:<16}  {:<11}  text",
        "id", "from", "to", "sent", "state"
    );
    for m in messages {
        println!("{}", row(m));
    }
}

fn run(cli: Cli) -> directmessages::Result<()> {
    let mut conn = SqliteConnection::establish(&cli.db)
        .map_err(|e| Error::Migration(format!("cannot open {}: {e}", cli.db)))?;
    directmessages::run_migrations(&mut conn)?;
    let inbox = Inbox::new();
    let conn = &mut conn;
    match cli.command {
        Command::Send { from, to, text } => {
            let m = inbox.send_message(conn, from, to, &text)?;
            println!("sent message {}", m.id);
        }
        Command::Inbox {
            user,
            limit,
            archived,
        } => {
            let mut query = ConversationsQuery::new().limit(limit);
            if archived {
                query = query.archived();
            }
            let rows = inbox.conversations(conn, user, query)?;
            if rows.is_empty() {
                println!("(no conversations)");
            } else {
                println!(
                    "{:>7}  {:>6}  {:<5}  last message",
                    "partner", "unread", "muted"
                );
                for r in rows {
                    println!(
                        "{:>7}  {:>6}  {:<5}  {}",
                        r.partner,
                        r.unread_count,
                        if r.muted { "yes" } else { "" },
                        r.last_message.content
                    );
                }
            }
            println!("unread in all: {}", inbox.unread_count(conn, user)?);
        }
        Command::Thread {
            user,
            partner,
            limit,
            mark_read,
        } => {
            let mut query = ConversationQuery::new().reversed().limit(limit);
            if mark_read {
                query = query.mark_read();
            }
            let mut page = inbox.conversation(conn, user, partner, query)?;
            page.reverse();
            table(&page);
        }
        Command::Read { user, id } => table(&[inbox.read_message_as(conn, user, id)?]),
        Command::Unread { user } => {
            let unread = inbox.unread_messages(conn, user)?;
            println!("{} unread", unread.len());
            table(&unread);
        }
        Command::Search {
            user,
            text,
            with,
            limit,
        } => {
            let mut query = SearchQuery::new(&text).limit(limit);
            if let Some(partner) = with {
                query = query.with(partner);
            }
            table(&inbox.search(conn, user, query)?);
        }
        Command::Edit { user, id, text } => {
            table(&[inbox.edit_message(conn, user, id, &text)?]);
        }
        Command::Unsend { user, id } => {
            inbox.unsend_message(conn, user, id)?;
            println!("unsent message {id}");
        }
        Command::Delete { user, id } => {
            inbox.delete_message(conn, user, id)?;
            println!("deleted message {id} for user {user}");
        }
        Command::Block { user, other } => {
            inbox.block_user(conn, user, other)?;
            println!("user {user} blocks user {other}");
        }
        Command::Unblock { user, other } => {
            inbox.unblock_user(conn, user, other)?;
            println!("user {user} no longer blocks user {other}");
        }
        Command::Purge { user } => {
            let n = inbox.purge_user(conn, user)?;
            println!("purged user {user}: {n} messages");
        }
    }
    Ok(())
}

/// The exit code a shell user expects for `error` (sysexits.h).
fn exit_code(error: &Error) -> u8 {
    match error {
        Error::MessageNotFound(_) => 66,
        Error::NotAllowed { .. } | Error::Blocked { .. } | Error::EditWindowClosed { .. } => 77,
        Error::Database(_) | Error::Migration(_) => 74,
        // Every refusal of the input, and whatever later versions add.
        _ => 65,
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            match std::error::Error::source(&e) {
                Some(cause) => eprintln!("dm: {e}: {cause}"),
                None => eprintln!("dm: {e}"),
            }
            ExitCode::from(exit_code(&e))
        }
    }
}
