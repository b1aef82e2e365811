//! The main job on embedded SQLite: migrate, a few users talking, unread lists, a read,
//! partners, the inbox screen, a conversation page, the archive, an edited and unsent
//! message and a muted conversation.
//!
//! Run with `cargo run --example quickstart`.

use diesel::{Connection, SqliteConnection};
use directmessages::{ConversationQuery, ConversationsQuery, Inbox, UserId};

fn name(user: UserId) -> String {
    match user {
        1 => "alice",
        2 => "bob",
        3 => "carol",
        _ => "someone",
    }
    .to_owned()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut conn = SqliteConnection::establish(":memory:")?;
    directmessages::run_migrations(&mut conn)?;

    let inbox = Inbox::new();
    inbox.signals().on_message_sent(|e| {
        println!(
            "  [signal] message_sent: {} -> {}{}",
            name(e.sender),
            name(e.recipient),
            if e.muted {
                " (muted: no notification)"
            } else {
                ""
            }
        );
    });
    inbox.signals().on_message_read(|e| {
        println!(
            "  [signal] message_read: {} read #{}",
            name(e.recipient),
            e.message.id
        );
    });

    let (alice, bob, carol) = (1, 2, 3);
    println!("Sending:");
    inbox.send_message(&mut conn, alice, bob, "Hi Bob! Lunch today? 🍜")?;
    inbox.send_message(&mut conn, bob, alice, "Sure, 12:30 at the usual place.")?;
    let question = inbox.send_message(&mut conn, carol, bob, "Did you see the new design?")?;
    inbox.send_message(&mut conn, alice, bob, "Great, see you there.")?;

    println!(
        "\nBob's unread messages ({}):",
        inbox.unread_count(&mut conn, bob)?
    );
    for m in inbox.unread_messages(&mut conn, bob)? {
        println!("  #{} from {}: {}", m.id, name(m.sender_id), m);
    }

    println!("\nBob reads Carol's question:");
    let text = inbox.read_message_formatted(&mut conn, question.id, name)?;
    println!("  {text}");

    println!("\nBob's inbox screen:");
    for row in inbox.conversations(&mut conn, bob, ConversationsQuery::new().limit(20))? {
        println!(
            "  {:<6} {} unread   last: {:?}",
            name(row.partner),
            row.unread_count,
            row.last_message.content
        );
    }

    let partners: Vec<String> = inbox
        .conversation_partners(&mut conn, bob)?
        .into_iter()
        .map(name)
        .collect();
    println!("\nBob has talked with: {}", partners.join(", "));

    println!("\nBob opens the conversation with Alice (latest 10, marked read):");
    let page = ConversationQuery::new().reversed().limit(10).mark_read();
    let mut messages = inbox.conversation(&mut conn, bob, alice, page)?;
    messages.reverse(); // show oldest first, like a chat window
    for m in &messages {
        let when = m.sent_at.format("%H:%M:%S");
        let status = match (m.sender_id == bob, m.is_unread()) {
            (true, true) => "delivered",
            (true, false) => "seen by alice",
            (false, _) => "read",
        };
        println!(
            "  {when} {:>5}: {:<35} ({status})",
            name(m.sender_id),
            m.content
        );
    }
    println!(
        "\nBob's unread messages now: {}",
        inbox.unread_count(&mut conn, bob)?
    );

    println!("\nBob archives the conversation with Carol:");
    inbox.archive_conversation(&mut conn, bob, carol)?;
    let screen =
        |conn: &mut SqliteConnection, query| -> Result<Vec<String>, directmessages::Error> {
            Ok(inbox
                .conversations(conn, bob, query)?
                .into_iter()
                .map(|row| name(row.partner))
                .collect())
        };
    println!(
        "  inbox:   {}",
        screen(&mut conn, ConversationsQuery::new())?.join(", ")
    );
    println!(
        "  archive: {}",
        screen(&mut conn, ConversationsQuery::new().archived())?.join(", ")
    );
    println!("Carol writes again, and the conversation is back:");
    inbox.send_message(&mut conn, carol, bob, "Lunch tomorrow too?")?;
    println!(
        "  inbox:   {}",
        screen(&mut conn, ConversationsQuery::new())?.join(", ")
    );

    println!("\nAlice sends a typo, edits it, then unsends it; Bob's inbox shows her previous message again:");
    let typo = inbox.send_message(&mut conn, alice, bob, "Lunhc tomorow?")?;
    let fixed = inbox.edit_message(&mut conn, alice, typo.id, "Lunch tomorrow?")?;
    println!(
        "  edited: {:?} (sent {}, edited {})",
        fixed.content,
        fixed.sent_at.format("%H:%M:%S"),
        fixed
            .edited_at
            .map(|t| t.format("%H:%M:%S").to_string())
            .unwrap_or_default()
    );
    inbox.unsend_message(&mut conn, alice, typo.id)?;
    let with_alice = inbox
        .conversations(&mut conn, bob, ConversationsQuery::new())?
        .into_iter()
        .find(|row| row.partner == alice);
    if let Some(row) = with_alice {
        println!("  last from alice: {:?}", row.last_message.content);
    }

    println!("\nBob mutes Alice; her next message is stored and counted, without a notification:");
    inbox.mute_conversation(&mut conn, bob, alice)?;
    inbox.send_message(&mut conn, alice, bob, "Running 5 minutes late")?;
    for row in inbox.conversations(&mut conn, bob, ConversationsQuery::new())? {
        println!(
            "  {:<6} {} unread{}",
            name(row.partner),
            row.unread_count,
            if row.muted { "  (muted)" } else { "" }
        );
    }
    Ok(())
}
