//! The behaviour of the inbox, written once and run on every enabled backend.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use chrono::{Duration, SubsecRound, TimeZone, Timelike, Utc};
use directmessages::{ConversationQuery, ConversationsQuery, Error, Inbox, Message, SearchQuery};

use common::{Probe, ReadLog, Subject, TestConn, TestInbox};

/// Records every `message_sent` and `message_read` as `("sent" | "read", id)`.
fn recorded(inbox: &TestInbox) -> Arc<Mutex<Vec<(&'static str, i64)>>> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let sent = Arc::clone(&log);
    inbox
        .signals()
        .on_message_sent(move |e| sent.lock().unwrap().push(("sent", e.message.id)));
    let read = Arc::clone(&log);
    inbox
        .signals()
        .on_message_read(move |e| read.lock().unwrap().push(("read", e.message.id)));
    log
}

fn contents(messages: &[Message]) -> Vec<&str> {
    messages.iter().map(|m| m.content.as_str()).collect()
}

fn ids(messages: &[Message]) -> Vec<i64> {
    messages.iter().map(|m| m.id).collect()
}

// ------------------------------------------------------------------ sending

fn send_message_returns_the_stored_row<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let before = Utc::now();
    let sent = inbox.send_message(&mut conn, 1, 2, "Hello").unwrap();
    assert_eq!(
        (sent.sender_id, sent.recipient_id, sent.content.as_str()),
        (1, 2, "Hello")
    );
    assert!(sent.is_unread());
    assert!(sent.sent_at >= before - chrono::Duration::seconds(1));
    assert!(sent.sent_at <= Utc::now());
    let stored = inbox
        .conversation(&mut conn, 1, 2, ConversationQuery::new())
        .unwrap();
    assert_eq!(stored, vec![sent]);
}

fn timestamps_are_utc_to_the_microsecond<D: Subject>(db: &D) {
    // The harness sets a non-UTC session time zone on every connection.
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let sent: Vec<Message> = (0..5)
        .map(|i| {
            inbox
                .send_message(&mut conn, 1, 2, &format!("tick {i}"))
                .unwrap()
        })
        .collect();
    // Storage cut to whole seconds would zero every fraction: five sends in a row all
    // landing on a whole second is a one-in-10^30 event.
    assert!(
        sent.iter()
            .any(|m| m.sent_at.timestamp_subsec_micros() != 0),
        "sent_at kept no fraction of a second: {:?}",
        sent.iter().map(|m| m.sent_at).collect::<Vec<_>>()
    );
    assert!(sent.iter().all(|m| m.sent_at.nanosecond() % 1_000 == 0));
    assert!((Utc::now() - sent[0].sent_at).num_seconds().abs() < 60);
    let again = inbox
        .conversation(&mut db.conn(), 1, 2, ConversationQuery::new())
        .unwrap();
    assert_eq!(again, sent, "read back on another connection, unchanged");

    // A time chosen here, with six significant fraction digits, round trips exactly.
    let chosen =
        Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).unwrap() + Duration::microseconds(123_457);
    conn.set_sent_at(sent[0].id, chosen);
    assert_eq!(db.conn().sent_at(sent[0].id), chosen);

    let read = inbox.read_message(&mut conn, sent[1].id).unwrap();
    let read_at = read.read_at.expect("marked read");
    assert_eq!(read_at.nanosecond() % 1_000, 0);
    let stored = inbox.read_message(&mut db.conn(), sent[1].id).unwrap();
    assert_eq!(stored.read_at, Some(read_at));
}

fn host_queries_filter_timestamp_columns_with_utc_timestamp<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let old = inbox.send_message(&mut conn, 1, 2, "old").unwrap();
    let new = inbox.send_message(&mut conn, 1, 2, "new").unwrap();
    let t = Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap() + Duration::microseconds(250_001);
    conn.set_sent_at(old.id, t - Duration::hours(1));
    conn.set_sent_at(new.id, t);
    assert_eq!(conn.count_sent_after(t - Duration::hours(2)), 2);
    assert_eq!(conn.count_sent_after(t - Duration::minutes(30)), 1);
    // To the microsecond: one microsecond before is before, the same instant is not.
    assert_eq!(conn.count_sent_after(t - Duration::microseconds(1)), 1);
    assert_eq!(conn.count_sent_after(t), 0);
}

fn ids_increase_and_are_never_reused<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let a = inbox.send_message(&mut conn, 1, 2, "a").unwrap();
    let b = inbox.send_message(&mut conn, 1, 2, "b").unwrap();
    assert!(b.id > a.id);
    inbox.delete_message(&mut conn, 1, b.id).unwrap();
    inbox.delete_message(&mut conn, 2, b.id).unwrap();
    let c = inbox.send_message(&mut conn, 1, 2, "c").unwrap();
    assert!(c.id > b.id, "the id of a removed message was reused");
}

fn message_sent_fires_after_the_write_with_the_stored_row<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    inbox.signals().on_message_sent(move |e| {
        sink.lock()
            .unwrap()
            .push((e.message.clone(), e.sender, e.recipient));
    });
    let sent = inbox.send_message(&mut conn, 7, 9, "payload").unwrap();
    assert_eq!(*seen.lock().unwrap(), vec![(sent, 7, 9)]);
}

fn handlers_run_in_registration_order<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let order = Arc::new(Mutex::new(Vec::new()));
    for name in ["first", "second", "third"] {
        let order = Arc::clone(&order);
        inbox
            .signals()
            .on_message_sent(move |_| order.lock().unwrap().push(name));
    }
    let read_order = Arc::clone(&order);
    inbox
        .signals()
        .on_message_read(move |_| read_order.lock().unwrap().push("read"));
    let m = inbox.send_message(&mut conn, 1, 2, "x").unwrap();
    inbox.read_message(&mut conn, m.id).unwrap();
    assert_eq!(*order.lock().unwrap(), ["first", "second", "third", "read"]);
}

fn a_handler_may_register_handlers_which_fire_from_the_next_event<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = Arc::new(D::inbox(Inbox::builder()));
    let log = Arc::new(Mutex::new(Vec::new()));
    let (weak, sink) = (Arc::downgrade(&inbox), Arc::clone(&log));
    inbox.signals().on_message_sent(move |e| {
        sink.lock().unwrap().push(("outer", e.message.id));
        let inbox = weak.upgrade().expect("the inbox outlives its handlers");
        let inner = Arc::clone(&sink);
        inbox
            .signals()
            .on_message_sent(move |e| inner.lock().unwrap().push(("inner", e.message.id)));
    });
    let a = inbox.send_message(&mut conn, 1, 2, "a").unwrap();
    let b = inbox.send_message(&mut conn, 1, 2, "b").unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        [("outer", a.id), ("outer", b.id), ("inner", b.id)]
    );
}

fn every_invalid_message_is_a_typed_error_and_stores_nothing<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder().max_message_chars(5));
    let log = recorded(&inbox);
    inbox.send_message(&mut conn, 1, 2, "seed").unwrap();
    let before = conn.counts();

    assert!(matches!(
        inbox.send_message(&mut conn, 3, 3, "hi"),
        Err(Error::SelfMessage { user: 3 })
    ));
    assert!(matches!(
        inbox.send_message(&mut conn, 1, 2, ""),
        Err(Error::EmptyMessage)
    ));
    assert!(matches!(
        inbox.send_message(&mut conn, 1, 2, " \t\n\u{3000}"),
        Err(Error::EmptyMessage)
    ));
    assert!(matches!(
        inbox.send_message(&mut conn, 1, 2, "héllo!"),
        Err(Error::MessageTooLong { length: 6, max: 5 })
    ));
    assert!(matches!(
        inbox.send_message(&mut conn, 1, 2, "a\0b"),
        Err(Error::InvalidContent { .. })
    ));
    // Length is counted in chars, not bytes: five 4-byte emoji fit.
    inbox.send_message(&mut conn, 1, 2, "😀😀😀😀😀").unwrap();

    let after = conn.counts();
    assert_eq!(after.0, before.0 + 1, "only the valid message was stored");
    assert_eq!(
        log.lock().unwrap().len(),
        2,
        "no signal for a rejected message"
    );
}

fn error_messages_name_the_ids_involved<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let m = inbox.send_message(&mut conn, 1, 2, "x").unwrap();
    let err = inbox.read_message_as(&mut conn, 3, m.id).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("user 3 may not access message {}", m.id)
    );
    let err = inbox.read_message(&mut conn, 424_242).unwrap_err();
    assert_eq!(err.to_string(), "message 424242 not found");
}

fn long_messages_round_trip<D: Subject>(db: &D) {
    // 100,000 two-byte chars: more than MySQL's TEXT holds.
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder().max_message_chars(100_000));
    let long = "é".repeat(100_000);
    let sent = inbox.send_message(&mut conn, 1, 2, &long).unwrap();
    assert_eq!(
        inbox.read_message(&mut conn, sent.id).unwrap().content,
        long
    );
}

fn unicode_round_trips<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let texts = [
        "emoji 😀🎉👩‍👩‍👧‍👦 flags 🇫🇷",
        "中文 日本語 한국어",
        "combining: e\u{301} a\u{30a} n\u{303}",
        "rtl: مرحبا שלום",
        "zero width\u{200b}joiner\u{200d}",
    ];
    for text in texts {
        let sent = inbox.send_message(&mut conn, 1, 2, text).unwrap();
        assert_eq!(sent.content, text);
        assert_eq!(
            inbox.read_message(&mut conn, sent.id).unwrap().content,
            text
        );
    }
    let all = inbox
        .conversation(&mut conn, 2, 1, ConversationQuery::new())
        .unwrap();
    assert_eq!(contents(&all), texts);
}

fn a_caller_transaction_can_roll_back_a_send<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let result: Result<(), Error> = conn.transaction(|conn| {
        inbox.send_message(conn, 1, 2, "never mind")?;
        assert_eq!(inbox.unread_count(conn, 2)?, 1);
        Err(Error::Rejected {
            reason: "caller changed its mind".into(),
        })
    });
    assert!(result.is_err());
    assert_eq!(conn.counts(), (0, 0, 0));
}

// ------------------------------------------------------------------ reading

fn unread_messages_lists_unread_received_oldest_first<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let a = inbox.send_message(&mut conn, 1, 2, "a").unwrap();
    inbox.send_message(&mut conn, 2, 1, "to 1").unwrap();
    let b = inbox.send_message(&mut conn, 3, 2, "b").unwrap();
    let c = inbox.send_message(&mut conn, 1, 2, "c").unwrap();
    inbox.read_message(&mut conn, b.id).unwrap();
    assert_eq!(
        ids(&inbox.unread_messages(&mut conn, 2).unwrap()),
        [a.id, c.id]
    );
    assert_eq!(inbox.unread_count(&mut conn, 2).unwrap(), 2);
    assert!(inbox.unread_messages(&mut conn, 99).unwrap().is_empty());
}

fn read_message_marks_read_and_fires_once<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let log = recorded(&inbox);
    let m = inbox.send_message(&mut conn, 1, 2, "x").unwrap();
    let first = inbox.read_message(&mut conn, m.id).unwrap();
    assert!(first.read_at.is_some());
    assert_eq!(
        Message {
            read_at: None,
            ..first.clone()
        },
        m
    );
    let second = inbox.read_message(&mut conn, m.id).unwrap();
    assert_eq!(
        second, first,
        "an already read message comes back unchanged"
    );
    assert_eq!(*log.lock().unwrap(), [("sent", m.id), ("read", m.id)]);
    assert!(inbox.unread_messages(&mut conn, 2).unwrap().is_empty());
}

fn reading_a_missing_message_is_not_found<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    assert!(matches!(
        inbox.read_message(&mut conn, 12345),
        Err(Error::MessageNotFound(12345))
    ));
    assert!(matches!(
        inbox.read_message_as(&mut conn, 1, 12345),
        Err(Error::MessageNotFound(12345))
    ));
    assert!(matches!(
        inbox.read_message_formatted(&mut conn, 12345, |_| "x".into()),
        Err(Error::MessageNotFound(12345))
    ));
}

fn recipient_reading_as_themselves_marks_read<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let log = recorded(&inbox);
    let m = inbox.send_message(&mut conn, 1, 2, "x").unwrap();
    assert!(inbox
        .read_message_as(&mut conn, 2, m.id)
        .unwrap()
        .read_at
        .is_some());
    assert_eq!(log.lock().unwrap().last(), Some(&("read", m.id)));
}

fn sender_views_without_marking_read<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let log = recorded(&inbox);
    let m = inbox.send_message(&mut conn, 1, 2, "x").unwrap();
    assert_eq!(inbox.read_message_as(&mut conn, 1, m.id).unwrap(), m);
    assert_eq!(ids(&inbox.unread_messages(&mut conn, 2).unwrap()), [m.id]);
    assert_eq!(*log.lock().unwrap(), [("sent", m.id)]);
}

fn stranger_cannot_read_a_message<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let m = inbox.send_message(&mut conn, 1, 2, "private").unwrap();
    assert!(matches!(
        inbox.read_message_as(&mut conn, 3, m.id),
        Err(Error::NotAllowed { user: 3, message }) if message == m.id
    ));
    assert_eq!(
        ids(&inbox.unread_messages(&mut conn, 2).unwrap()),
        [m.id],
        "still unread"
    );
}

fn read_message_formatted_prefixes_the_sender_name<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let m = inbox.send_message(&mut conn, 1, 2, "Hi there").unwrap();
    let text = inbox
        .read_message_formatted(&mut conn, m.id, |id| format!("user{id}"))
        .unwrap();
    assert_eq!(text, "user1: Hi there");
    assert!(
        inbox.unread_messages(&mut conn, 2).unwrap().is_empty(),
        "marked read"
    );
}

// ------------------------------------------------------------------ partners and conversations

fn partners_are_listed_once_most_recent_first<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    inbox.send_message(&mut conn, 1, 2, "to 2").unwrap();
    inbox.send_message(&mut conn, 3, 1, "from 3").unwrap();
    inbox.send_message(&mut conn, 1, 4, "to 4").unwrap();
    inbox.send_message(&mut conn, 2, 1, "from 2 again").unwrap();
    inbox.send_message(&mut conn, 5, 6, "unrelated").unwrap();
    assert_eq!(
        inbox.conversation_partners(&mut conn, 1).unwrap(),
        [2, 4, 3]
    );
    assert_eq!(inbox.conversation_partners(&mut conn, 3).unwrap(), [1]);
}

fn a_user_with_no_messages_has_no_partners<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    inbox.send_message(&mut conn, 1, 2, "x").unwrap();
    assert!(inbox
        .conversation_partners(&mut conn, 42)
        .unwrap()
        .is_empty());
    assert!(inbox
        .conversations(&mut conn, 42, ConversationsQuery::new())
        .unwrap()
        .is_empty());
}

fn conversation_holds_both_directions_oldest_first<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    inbox.send_message(&mut conn, 1, 2, "one").unwrap();
    inbox.send_message(&mut conn, 2, 1, "two").unwrap();
    inbox.send_message(&mut conn, 1, 3, "elsewhere").unwrap();
    inbox.send_message(&mut conn, 1, 2, "three").unwrap();
    let from_1 = inbox
        .conversation(&mut conn, 1, 2, ConversationQuery::new())
        .unwrap();
    let from_2 = inbox
        .conversation(&mut conn, 2, 1, ConversationQuery::new())
        .unwrap();
    assert_eq!(contents(&from_1), ["one", "two", "three"]);
    assert_eq!(from_1, from_2);
    assert!(inbox
        .conversation(&mut conn, 1, 1, ConversationQuery::new())
        .unwrap()
        .is_empty());
}

fn limit_takes_the_oldest_and_reversed_limit_the_latest<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    for i in 0..6 {
        inbox
            .send_message(&mut conn, 1 + i % 2, 2 - i % 2, &format!("m{i}"))
            .unwrap();
    }
    let q = ConversationQuery::new;
    let oldest = inbox.conversation(&mut conn, 1, 2, q().limit(2)).unwrap();
    assert_eq!(contents(&oldest), ["m0", "m1"]);
    let latest = inbox
        .conversation(&mut conn, 1, 2, q().reversed().limit(2))
        .unwrap();
    assert_eq!(contents(&latest), ["m5", "m4"]);
    let all_reversed = inbox.conversation(&mut conn, 1, 2, q().reversed()).unwrap();
    assert_eq!(
        contents(&all_reversed),
        ["m5", "m4", "m3", "m2", "m1", "m0"]
    );
    assert!(inbox
        .conversation(&mut conn, 1, 2, q().limit(0))
        .unwrap()
        .is_empty());
}

fn keyset_pages_cover_the_conversation_exactly_once<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let mut all = Vec::new();
    for i in 0..23 {
        let (from, to) = if i % 3 == 0 { (2, 1) } else { (1, 2) };
        all.push(
            inbox
                .send_message(&mut conn, from, to, &format!("m{i}"))
                .unwrap()
                .id,
        );
        inbox.send_message(&mut conn, 1, 3, "noise").unwrap();
    }
    // Backwards, newest first, as a chat screen scrolls up.
    let mut seen = Vec::new();
    let mut query = ConversationQuery::new().reversed().limit(5);
    loop {
        let page = inbox.conversation(&mut conn, 1, 2, query).unwrap();
        assert!(page.len() <= 5);
        let Some(last) = page.last() else { break };
        query = ConversationQuery::new().reversed().limit(5).before(last.id);
        seen.extend(ids(&page));
    }
    seen.reverse();
    assert_eq!(seen, all);
    // Forwards, oldest first.
    let mut seen = Vec::new();
    let mut query = ConversationQuery::new().limit(4);
    loop {
        let page = inbox.conversation(&mut conn, 2, 1, query).unwrap();
        let Some(last) = page.last() else { break };
        query = ConversationQuery::new().limit(4).after(last.id);
        seen.extend(ids(&page));
    }
    assert_eq!(seen, all);
    // Both bounds at once: strictly between.
    let between = inbox
        .conversation(
            &mut conn,
            1,
            2,
            ConversationQuery::new().after(all[3]).before(all[7]),
        )
        .unwrap();
    assert_eq!(ids(&between), &all[4..7]);
}

fn conversation_mark_read_marks_only_what_the_viewer_received<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let log = recorded(&inbox);
    let to_2a = inbox.send_message(&mut conn, 1, 2, "to 2 a").unwrap();
    let to_1 = inbox.send_message(&mut conn, 2, 1, "to 1").unwrap();
    let to_2b = inbox.send_message(&mut conn, 1, 2, "to 2 b").unwrap();
    let to_2c = inbox.send_message(&mut conn, 1, 2, "to 2 c").unwrap();
    log.lock().unwrap().clear();

    // Only the first page (3 messages) is marked, and only what user 2 received.
    let page = inbox
        .conversation(
            &mut conn,
            2,
            1,
            ConversationQuery::new().limit(3).mark_read(),
        )
        .unwrap();
    assert_eq!(ids(&page), [to_2a.id, to_1.id, to_2b.id]);
    assert!(
        page[0].read_at.is_some() && page[2].read_at.is_some(),
        "returned marked"
    );
    assert!(
        page[1].read_at.is_none(),
        "what the viewer sent stays unread"
    );
    assert_eq!(
        *log.lock().unwrap(),
        [("read", to_2a.id), ("read", to_2b.id)]
    );
    assert_eq!(
        ids(&inbox.unread_messages(&mut conn, 2).unwrap()),
        [to_2c.id]
    );
    assert_eq!(
        ids(&inbox.unread_messages(&mut conn, 1).unwrap()),
        [to_1.id]
    );

    // Again: nothing new to mark, nothing fires.
    log.lock().unwrap().clear();
    inbox
        .conversation(
            &mut conn,
            2,
            1,
            ConversationQuery::new().limit(3).mark_read(),
        )
        .unwrap();
    assert!(log.lock().unwrap().is_empty());
    assert_eq!(conn.conversation_rows(), conn.expected_conversation_rows());
}

fn conversation_without_mark_read_changes_nothing<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let m = inbox.send_message(&mut conn, 1, 2, "x").unwrap();
    inbox
        .conversation(&mut conn, 2, 1, ConversationQuery::new())
        .unwrap();
    assert_eq!(ids(&inbox.unread_messages(&mut conn, 2).unwrap()), [m.id]);
}

fn migrations_are_idempotent<D: Subject>(db: &D) {
    let mut conn = db.conn();
    common::run_migrations(&mut conn).unwrap();
    common::run_migrations(&mut conn).unwrap();
    D::inbox(Inbox::builder())
        .send_message(&mut conn, 1, 2, "still works")
        .unwrap();
}

// ------------------------------------------------------------------ the inbox screen

fn conversations_summarise_each_partner_latest_first<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    inbox.send_message(&mut conn, 2, 1, "2 a").unwrap();
    inbox.send_message(&mut conn, 2, 1, "2 b").unwrap();
    inbox.send_message(&mut conn, 3, 1, "3 a").unwrap();
    let last_to_2 = inbox.send_message(&mut conn, 1, 2, "reply to 2").unwrap();
    let rows = inbox
        .conversations(&mut conn, 1, ConversationsQuery::new())
        .unwrap();
    assert_eq!(rows.iter().map(|r| r.partner).collect::<Vec<_>>(), [2, 3]);
    assert_eq!(rows[0].last_message, last_to_2);
    assert_eq!(rows[0].unread_count, 2);
    assert_eq!(rows[1].last_message.content, "3 a");
    assert_eq!(rows[1].unread_count, 1);
    let theirs = inbox
        .conversations(&mut conn, 2, ConversationsQuery::new())
        .unwrap();
    assert_eq!((theirs[0].partner, theirs[0].unread_count), (1, 1));
}

fn conversations_page_by_keyset<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    for partner in 2..=8 {
        inbox.send_message(&mut conn, partner, 1, "hi").unwrap();
    }
    let mut seen = Vec::new();
    let mut query = ConversationsQuery::new().limit(3);
    loop {
        let page = inbox.conversations(&mut conn, 1, query).unwrap();
        let Some(last) = page.last() else { break };
        query = ConversationsQuery::new()
            .limit(3)
            .before(last.last_message.id);
        seen.extend(page.iter().map(|r| r.partner));
    }
    assert_eq!(seen, [8, 7, 6, 5, 4, 3, 2]);
}

fn mark_conversation_read_marks_everything_from_the_partner<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let log = recorded(&inbox);
    let a = inbox.send_message(&mut conn, 2, 1, "a").unwrap();
    let b = inbox.send_message(&mut conn, 2, 1, "b").unwrap();
    inbox.send_message(&mut conn, 1, 2, "mine").unwrap();
    let other = inbox.send_message(&mut conn, 3, 1, "other").unwrap();
    log.lock().unwrap().clear();
    assert_eq!(inbox.mark_conversation_read(&mut conn, 1, 2).unwrap(), 2);
    assert_eq!(*log.lock().unwrap(), [("read", a.id), ("read", b.id)]);
    assert_eq!(
        ids(&inbox.unread_messages(&mut conn, 1).unwrap()),
        [other.id]
    );
    assert_eq!(
        inbox.unread_messages(&mut conn, 2).unwrap().len(),
        1,
        "the sender's side untouched"
    );
    assert_eq!(inbox.mark_conversation_read(&mut conn, 1, 2).unwrap(), 0);
    let rows = inbox
        .conversations(&mut conn, 1, ConversationsQuery::new())
        .unwrap();
    assert_eq!(
        rows.iter().map(|r| r.unread_count).collect::<Vec<_>>(),
        [1, 0]
    );
}

fn read_all_while_a_new_message_arrives<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    inbox.send_message(&mut conn, 2, 1, "a").unwrap();
    assert_eq!(inbox.mark_conversation_read(&mut conn, 1, 2).unwrap(), 1);
    let late = inbox.send_message(&mut db.conn(), 2, 1, "late").unwrap();
    assert_eq!(
        ids(&inbox.unread_messages(&mut conn, 1).unwrap()),
        [late.id]
    );
    let rows = inbox
        .conversations(&mut conn, 1, ConversationsQuery::new())
        .unwrap();
    assert_eq!(
        (rows[0].unread_count, rows[0].last_message.id),
        (1, late.id)
    );
}

fn delete_hides_a_message_from_one_side_only<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let a = inbox.send_message(&mut conn, 1, 2, "a").unwrap();
    let b = inbox.send_message(&mut conn, 1, 2, "b").unwrap();
    inbox.delete_message(&mut conn, 2, b.id).unwrap();
    let seen_by_2 = inbox
        .conversation(&mut conn, 2, 1, ConversationQuery::new())
        .unwrap();
    let seen_by_1 = inbox
        .conversation(&mut conn, 1, 2, ConversationQuery::new())
        .unwrap();
    assert_eq!(ids(&seen_by_2), [a.id]);
    assert_eq!(ids(&seen_by_1), [a.id, b.id]);
    assert_eq!(ids(&inbox.unread_messages(&mut conn, 2).unwrap()), [a.id]);
    assert_eq!(inbox.unread_count(&mut conn, 2).unwrap(), 1);
    assert!(matches!(
        inbox.read_message_as(&mut conn, 2, b.id),
        Err(Error::MessageNotFound(_))
    ));
    assert_eq!(inbox.read_message_as(&mut conn, 1, b.id).unwrap(), b);
    assert_eq!(conn.deletion_flags(b.id), Some((false, true)));
    assert_eq!(conn.conversation_rows(), conn.expected_conversation_rows());
}

fn a_message_both_sides_deleted_is_gone<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let m = inbox.send_message(&mut conn, 1, 2, "bye").unwrap();
    inbox.delete_message(&mut conn, 1, m.id).unwrap();
    assert_eq!(conn.deletion_flags(m.id), Some((true, false)));
    inbox.delete_message(&mut conn, 2, m.id).unwrap();
    assert_eq!(conn.deletion_flags(m.id), None);
    assert!(matches!(
        inbox.read_message(&mut conn, m.id),
        Err(Error::MessageNotFound(_))
    ));
    assert!(inbox
        .conversation_partners(&mut conn, 1)
        .unwrap()
        .is_empty());
    assert!(inbox
        .conversations(&mut conn, 2, ConversationsQuery::new())
        .unwrap()
        .is_empty());
}

fn deleting_the_last_message_shows_the_previous_one<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let first = inbox.send_message(&mut conn, 1, 2, "first").unwrap();
    inbox.send_message(&mut conn, 3, 1, "from 3").unwrap();
    let last = inbox.send_message(&mut conn, 2, 1, "last").unwrap();
    inbox.delete_message(&mut conn, 1, last.id).unwrap();
    let rows = inbox
        .conversations(&mut conn, 1, ConversationsQuery::new())
        .unwrap();
    assert_eq!(rows.iter().map(|r| r.partner).collect::<Vec<_>>(), [3, 2]);
    assert_eq!(rows[1].last_message, first);
    assert_eq!(
        rows[1].unread_count, 0,
        "the deleted unread message no longer counts"
    );
    assert_eq!(inbox.conversation_partners(&mut conn, 1).unwrap(), [3, 2]);
    let theirs = inbox
        .conversations(&mut conn, 2, ConversationsQuery::new())
        .unwrap();
    assert_eq!(
        theirs[0].last_message.id, last.id,
        "the other side still sees it"
    );
    inbox.delete_message(&mut conn, 1, first.id).unwrap();
    assert_eq!(inbox.conversation_partners(&mut conn, 1).unwrap(), [3]);
    assert_eq!(conn.conversation_rows(), conn.expected_conversation_rows());
}

fn only_a_participant_can_delete_and_only_once<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let m = inbox.send_message(&mut conn, 1, 2, "x").unwrap();
    let before = conn.counts();
    assert!(matches!(
        inbox.delete_message(&mut conn, 3, m.id),
        Err(Error::NotAllowed { user: 3, .. })
    ));
    assert_eq!(conn.deletion_flags(m.id), Some((false, false)));
    inbox.delete_message(&mut conn, 1, m.id).unwrap();
    assert!(matches!(
        inbox.delete_message(&mut conn, 1, m.id),
        Err(Error::MessageNotFound(_))
    ));
    assert!(matches!(
        inbox.delete_message(&mut conn, 1, 999_999),
        Err(Error::MessageNotFound(_))
    ));
    assert_eq!(conn.counts(), before);
}

fn a_blocked_sender_gets_blocked_and_nothing_is_stored<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let log = recorded(&inbox);
    inbox
        .send_message(&mut conn, 2, 1, "before the block")
        .unwrap();
    inbox.block_user(&mut conn, 1, 2).unwrap();
    let before = conn.counts();
    assert!(matches!(
        inbox.send_message(&mut conn, 2, 1, "let me in"),
        Err(Error::Blocked {
            sender: 2,
            recipient: 1
        })
    ));
    assert_eq!(conn.counts(), before);
    assert_eq!(log.lock().unwrap().len(), 1);
    // One direction only: 1 may still write to 2.
    inbox
        .send_message(&mut conn, 1, 2, "I may still write")
        .unwrap();
}

fn blocking_keeps_history_but_not_unread_counts<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let old = inbox.send_message(&mut conn, 2, 1, "old").unwrap();
    inbox.send_message(&mut conn, 3, 1, "from 3").unwrap();
    inbox.block_user(&mut conn, 1, 2).unwrap();
    assert!(inbox.is_blocked(&mut conn, 1, 2).unwrap());
    assert!(!inbox.is_blocked(&mut conn, 2, 1).unwrap());
    assert_eq!(inbox.unread_count(&mut conn, 1).unwrap(), 1);
    assert_eq!(inbox.unread_messages(&mut conn, 1).unwrap().len(), 1);
    let rows = inbox
        .conversations(&mut conn, 1, ConversationsQuery::new())
        .unwrap();
    let row_2 = rows.iter().find(|r| r.partner == 2).expect("history kept");
    assert_eq!(row_2.unread_count, 0);
    assert_eq!(
        inbox
            .conversation(&mut conn, 1, 2, ConversationQuery::new())
            .unwrap(),
        std::slice::from_ref(&old)
    );
    assert!(
        inbox.read_message_as(&mut conn, 1, old.id).is_ok(),
        "old messages stay readable"
    );
}

fn block_then_unblock<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    inbox.send_message(&mut conn, 2, 1, "unread").unwrap();
    inbox.block_user(&mut conn, 1, 2).unwrap();
    inbox.block_user(&mut conn, 1, 2).unwrap(); // twice is once
    assert_eq!(conn.counts().2, 1);
    inbox.unblock_user(&mut conn, 1, 2).unwrap();
    assert!(!inbox.is_blocked(&mut conn, 1, 2).unwrap());
    assert_eq!(
        inbox.unread_count(&mut conn, 1).unwrap(),
        1,
        "the old message counts again"
    );
    inbox.send_message(&mut conn, 2, 1, "welcome back").unwrap();
    assert_eq!(inbox.unread_count(&mut conn, 1).unwrap(), 2);
    inbox.unblock_user(&mut conn, 1, 2).unwrap(); // unblocking nothing is fine
}

fn blocking_oneself_is_an_error<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    assert!(matches!(
        inbox.block_user(&mut conn, 4, 4),
        Err(Error::SelfBlock { user: 4 })
    ));
    assert_eq!(conn.counts(), (0, 0, 0));
}

fn a_before_send_policy_can_veto_and_nothing_is_stored<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let log = recorded(&inbox);
    let calls = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&calls);
    inbox.signals().on_before_send(move |draft| {
        seen.lock()
            .unwrap()
            .push((draft.sender, draft.recipient, draft.content.to_owned()));
        Ok(())
    });
    inbox.signals().on_before_send(|draft| {
        if draft.content.contains("spam") {
            Err("looks like spam".to_owned())
        } else {
            Ok(())
        }
    });
    inbox
        .signals()
        .on_before_send(|_| Err("never reached for spam".to_owned()));
    let err = inbox
        .send_message(&mut conn, 1, 2, "buy spam now")
        .unwrap_err();
    assert!(matches!(&err, Error::Rejected { reason } if reason == "looks like spam"));
    assert_eq!(conn.counts(), (0, 0, 0));
    assert!(log.lock().unwrap().is_empty());
    assert_eq!(*calls.lock().unwrap(), [(1, 2, "buy spam now".to_owned())]);
    // Validation runs first: an invalid message never reaches a policy.
    assert!(matches!(
        inbox.send_message(&mut conn, 1, 2, " "),
        Err(Error::EmptyMessage)
    ));
    assert_eq!(calls.lock().unwrap().len(), 1);
}

fn purge_user_removes_everything_of_that_user<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    inbox.send_message(&mut conn, 1, 2, "a").unwrap();
    inbox.send_message(&mut conn, 2, 1, "b").unwrap();
    inbox.send_message(&mut conn, 3, 1, "c").unwrap();
    let kept = inbox.send_message(&mut conn, 2, 3, "kept").unwrap();
    inbox.block_user(&mut conn, 1, 4).unwrap();
    inbox.block_user(&mut conn, 5, 1).unwrap();
    inbox.block_user(&mut conn, 2, 3).unwrap();
    assert_eq!(inbox.purge_user(&mut conn, 1).unwrap(), 3);
    assert_eq!(conn.counts(), (1, 2, 1));
    assert!(inbox
        .conversation_partners(&mut conn, 1)
        .unwrap()
        .is_empty());
    assert_eq!(inbox.conversation_partners(&mut conn, 2).unwrap(), [3]);
    assert_eq!(inbox.unread_count(&mut conn, 1).unwrap(), 0);
    assert_eq!(inbox.unread_messages(&mut conn, 3).unwrap(), [kept]);
    assert_eq!(inbox.purge_user(&mut conn, 1).unwrap(), 0);
    assert_eq!(conn.conversation_rows(), conn.expected_conversation_rows());
}

// ------------------------------------------------------------------ handlers that panic

fn a_panicking_handler_stops_no_other_handler<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    inbox
        .signals()
        .on_message_sent(|_| panic!("a handler that fails"));
    let log = recorded(&inbox);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        inbox.send_message(&mut conn, 1, 2, "still stored")
    }));
    assert!(outcome.is_err(), "the panic reaches the caller");
    let stored = inbox
        .conversation(&mut conn, 1, 2, ConversationQuery::new())
        .unwrap();
    assert_eq!(contents(&stored), ["still stored"]);
    assert_eq!(
        *log.lock().unwrap(),
        [("sent", stored[0].id)],
        "the later handler got the event"
    );
}

fn every_message_of_a_batch_reaches_every_handler_despite_a_panic<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let first: Vec<i64> = (0..3)
        .map(|i| {
            inbox
                .send_message(&mut conn, 2, 1, &format!("a{i}"))
                .unwrap()
                .id
        })
        .collect();
    let doomed = first[0];
    inbox.signals().on_message_read(move |e| {
        if e.message.id == doomed {
            panic!("a handler that fails on one message");
        }
    });
    let fired = ReadLog::on(inbox.signals());
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        inbox.mark_conversation_read(&mut conn, 1, 2)
    }));
    assert!(outcome.is_err(), "the panic reaches the caller");
    assert_eq!(fired.sorted(), first, "every message_read delivered");
    assert_eq!(inbox.unread_count(&mut conn, 1).unwrap(), 0);

    let second: Vec<i64> = (0..3)
        .map(|i| {
            inbox
                .send_message(&mut conn, 2, 1, &format!("b{i}"))
                .unwrap()
                .id
        })
        .collect();
    inbox
        .signals()
        .on_message_read(|_| panic!("a handler that always fails"));
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        inbox.conversation(&mut conn, 1, 2, ConversationQuery::new().mark_read())
    }));
    assert!(outcome.is_err());
    let all: Vec<i64> = first.iter().chain(&second).copied().collect();
    assert_eq!(
        fired.sorted(),
        all,
        "the whole batch, despite two failing handlers"
    );
    assert_eq!(conn.conversation_rows(), conn.expected_conversation_rows());
}

// ------------------------------------------------------------------ big batches

fn a_marked_page_above_the_chunk_size_comes_back_read<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    conn.seed_unread(2, 1, 1_500);
    conn.seed_unread(1, 2, 10);
    let fired = ReadLog::on(inbox.signals());
    let page = inbox
        .conversation(
            &mut conn,
            1,
            2,
            ConversationQuery::new().reversed().mark_read(),
        )
        .unwrap();
    assert_eq!(page.len(), 1_510);
    assert!(page.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    let received: Vec<&Message> = page.iter().filter(|m| m.recipient_id == 1).collect();
    assert_eq!(received.len(), 1_500);
    assert!(
        received.iter().all(|m| m.read_at.is_some()),
        "{} of them returned unread",
        received.iter().filter(|m| m.is_unread()).count()
    );
    assert_eq!(fired.sorted().len(), 1_500);
    let stored = inbox
        .conversation(&mut conn, 1, 2, ConversationQuery::new().reversed())
        .unwrap();
    assert_eq!(page, stored, "the page is what was stored");
    assert_eq!(conn.conversation_rows(), conn.expected_conversation_rows());
}

fn a_flooded_user_can_list_and_mark_everything<D: Subject>(db: &D) {
    const FLOOD: usize = 70_000;
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    conn.seed_unread(2, 1, FLOOD);
    let fired = ReadLog::on(inbox.signals());
    assert_eq!(inbox.unread_count(&mut conn, 1).unwrap(), FLOOD as i64);
    assert_eq!(inbox.unread_messages(&mut conn, 1).unwrap().len(), FLOOD);
    let half = inbox
        .conversation(
            &mut conn,
            1,
            2,
            ConversationQuery::new().limit(FLOOD as u32 / 2).mark_read(),
        )
        .unwrap();
    assert_eq!(half.len(), FLOOD / 2);
    assert!(half.iter().all(|m| m.read_at.is_some()));
    assert_eq!(
        inbox.mark_conversation_read(&mut conn, 1, 2).unwrap(),
        FLOOD - FLOOD / 2
    );
    let fired = fired.sorted();
    assert_eq!(fired.len(), FLOOD);
    assert!(fired.windows(2).all(|w| w[0] < w[1]), "once per message");
    assert_eq!(inbox.unread_count(&mut conn, 1).unwrap(), 0);
    assert_eq!(conn.conversation_rows(), conn.expected_conversation_rows());
    assert_eq!(inbox.purge_user(&mut conn, 2).unwrap(), FLOOD as u64);
}

// ------------------------------------------------------------------ reads write nothing

fn reads_that_change_nothing_work_on_a_read_only_connection<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let read = inbox.send_message(&mut conn, 1, 2, "read").unwrap();
    inbox.read_message(&mut conn, read.id).unwrap();
    let unread = inbox.send_message(&mut conn, 1, 2, "unread").unwrap();
    let mut replica = db.conn();
    replica.set_read_only();
    let fired = ReadLog::on(inbox.signals());

    let again = inbox.read_message(&mut replica, read.id).unwrap();
    assert_eq!(again.id, read.id);
    assert!(inbox.read_message_as(&mut replica, 2, read.id).is_ok());
    let viewed = inbox.read_message_as(&mut replica, 1, unread.id).unwrap();
    assert!(viewed.is_unread(), "the sender viewing marks nothing");
    let page = inbox
        .conversation(&mut replica, 1, 2, ConversationQuery::new().mark_read())
        .unwrap();
    assert_eq!(page.len(), 2, "nothing for the sender to mark");
    assert_eq!(inbox.mark_conversation_read(&mut replica, 1, 2).unwrap(), 0);
    assert_eq!(inbox.unread_count(&mut replica, 2).unwrap(), 1);
    assert_eq!(inbox.unread_messages(&mut replica, 2).unwrap().len(), 1);
    assert_eq!(
        inbox
            .conversations(&mut replica, 2, ConversationsQuery::new())
            .unwrap()
            .len(),
        1
    );
    assert_eq!(inbox.conversation_partners(&mut replica, 2).unwrap(), [1]);
    assert!(!inbox.is_blocked(&mut replica, 2, 1).unwrap());

    // A write there is a typed database error, and stores nothing.
    assert!(matches!(
        inbox.read_message(&mut replica, unread.id),
        Err(Error::Database(_))
    ));
    assert!(matches!(
        inbox.send_message(&mut replica, 1, 2, "refused"),
        Err(Error::Database(_))
    ));
    assert!(fired.sorted().is_empty());
    assert_eq!(inbox.unread_count(&mut conn, 2).unwrap(), 1);
    assert_eq!(conn.counts().0, 2);
}

// ------------------------------------------------------------------ clarified semantics

fn the_first_fault_in_validation_order_is_reported<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder().max_message_chars(3));
    inbox
        .signals()
        .on_before_send(|_| Err("policy says no".to_owned()));
    inbox.block_user(&mut conn, 2, 1).unwrap();
    // self before empty, empty before too long, too long before invalid.
    assert!(matches!(
        inbox.send_message(&mut conn, 1, 1, "     "),
        Err(Error::SelfMessage { user: 1 })
    ));
    assert!(matches!(
        inbox.send_message(&mut conn, 1, 2, "      "),
        Err(Error::EmptyMessage)
    ));
    assert!(matches!(
        inbox.send_message(&mut conn, 1, 2, "ab\0cd"),
        Err(Error::MessageTooLong { length: 5, max: 3 })
    ));
    assert!(matches!(
        inbox.send_message(&mut conn, 1, 2, "a\0"),
        Err(Error::InvalidContent { .. })
    ));
    // Then the policies, then the block.
    assert!(matches!(
        inbox.send_message(&mut conn, 1, 2, "hi"),
        Err(Error::Rejected { .. })
    ));
    let lenient = D::inbox(Inbox::builder());
    assert!(matches!(
        lenient.send_message(&mut conn, 1, 2, "hi"),
        Err(Error::Blocked {
            sender: 1,
            recipient: 2
        })
    ));
    assert_eq!(conn.counts().0, 0);
}

fn with_oneself_a_conversation_is_empty_and_nothing_is_marked<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    inbox.send_message(&mut conn, 1, 2, "hi").unwrap();
    assert!(inbox
        .conversation(&mut conn, 1, 1, ConversationQuery::new().mark_read())
        .unwrap()
        .is_empty());
    assert_eq!(inbox.mark_conversation_read(&mut conn, 1, 1).unwrap(), 0);
    assert!(matches!(
        inbox.block_user(&mut conn, 1, 1),
        Err(Error::SelfBlock { user: 1 })
    ));
}

fn a_deleted_message_is_not_found_to_whoever_deleted_it<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let fired = ReadLog::on(inbox.signals());
    let m = inbox.send_message(&mut conn, 1, 2, "gone for 2").unwrap();
    inbox.delete_message(&mut conn, 2, m.id).unwrap();
    assert!(matches!(
        inbox.read_message_as(&mut conn, 2, m.id),
        Err(Error::MessageNotFound(id)) if id == m.id
    ));
    assert!(matches!(
        inbox.delete_message(&mut conn, 2, m.id),
        Err(Error::MessageNotFound(id)) if id == m.id
    ));
    // The unchecked read returns it unchanged and fires nothing.
    let unchecked = inbox.read_message(&mut conn, m.id).unwrap();
    assert_eq!(unchecked, m);
    assert!(fired.sorted().is_empty());
    assert_eq!(inbox.read_message_as(&mut conn, 1, m.id).unwrap(), m);
}

fn within_a_conversation_a_higher_id_is_never_earlier<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let first = inbox.send_message(&mut conn, 1, 2, "first").unwrap();
    // Another instance whose clock runs an hour ahead wrote the latest message.
    let ahead = (Utc::now() + Duration::hours(1)).trunc_subsecs(6);
    conn.set_sent_at(first.id, ahead);
    let second = inbox.send_message(&mut conn, 2, 1, "second").unwrap();
    assert!(second.id > first.id);
    assert!(second.sent_at >= ahead, "{} < {}", second.sent_at, ahead);
    // Another conversation keeps its own clock.
    let elsewhere = inbox.send_message(&mut conn, 1, 3, "elsewhere").unwrap();
    assert!(elsewhere.sent_at < ahead);
    assert!(conn.clock_inversions().is_empty());
}

// ------------------------------------------------------------------ archive

fn partners_in(summaries: &[directmessages::ConversationSummary]) -> Vec<i64> {
    summaries.iter().map(|s| s.partner).collect()
}

fn archiving_hides_a_conversation_until_a_new_message<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    inbox.send_message(&mut conn, 2, 1, "from two").unwrap();
    inbox.send_message(&mut conn, 3, 1, "from three").unwrap();
    inbox.archive_conversation(&mut conn, 1, 2).unwrap();
    let inbox_of_1 = |conn: &mut _, q| partners_in(&inbox.conversations(conn, 1, q).unwrap());
    assert_eq!(inbox_of_1(&mut conn, ConversationsQuery::new()), [3]);
    assert_eq!(
        inbox_of_1(&mut conn, ConversationsQuery::new().archived()),
        [2]
    );
    // A message from the partner brings it back...
    inbox.send_message(&mut conn, 2, 1, "again").unwrap();
    assert_eq!(inbox_of_1(&mut conn, ConversationsQuery::new()), [2, 3]);
    assert!(inbox_of_1(&mut conn, ConversationsQuery::new().archived()).is_empty());
    // ...and so does one from the user who archived it.
    inbox.archive_conversation(&mut conn, 1, 2).unwrap();
    inbox.send_message(&mut conn, 1, 2, "replying").unwrap();
    assert_eq!(inbox_of_1(&mut conn, ConversationsQuery::new()), [2, 3]);
    let summary = &inbox
        .conversations(&mut conn, 1, ConversationsQuery::new())
        .unwrap()[0];
    assert!(!summary.archived);
}

fn the_archive_lists_only_archived_conversations_keyset_paged<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    for partner in 2..=7 {
        inbox
            .send_message(&mut conn, partner, 1, &format!("from {partner}"))
            .unwrap();
    }
    for partner in [2, 4, 5, 7] {
        inbox.archive_conversation(&mut conn, 1, partner).unwrap();
    }
    let first = inbox
        .conversations(&mut conn, 1, ConversationsQuery::new().archived().limit(3))
        .unwrap();
    assert_eq!(partners_in(&first), [7, 5, 4]);
    assert!(first.iter().all(|s| s.archived && s.unread_count == 1));
    let cursor = first[2].last_message.id;
    let next = inbox
        .conversations(
            &mut conn,
            1,
            ConversationsQuery::new().archived().limit(3).before(cursor),
        )
        .unwrap();
    assert_eq!(partners_in(&next), [2]);
    let active = inbox
        .conversations(&mut conn, 1, ConversationsQuery::new())
        .unwrap();
    assert_eq!(partners_in(&active), [6, 3]);
}

fn archive_changes_no_count_and_no_other_listing<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let m = inbox.send_message(&mut conn, 2, 1, "unread").unwrap();
    inbox.send_message(&mut conn, 3, 1, "also unread").unwrap();
    inbox.archive_conversation(&mut conn, 1, 2).unwrap();
    assert_eq!(inbox.unread_count(&mut conn, 1).unwrap(), 2);
    assert_eq!(inbox.unread_messages(&mut conn, 1).unwrap().len(), 2);
    assert_eq!(inbox.conversation_partners(&mut conn, 1).unwrap(), [3, 2]);
    assert_eq!(
        ids(&inbox
            .conversation(&mut conn, 1, 2, ConversationQuery::new())
            .unwrap()),
        [m.id]
    );
    // Reading in the archive marks read as anywhere else.
    inbox.mark_conversation_read(&mut conn, 1, 2).unwrap();
    assert_eq!(inbox.unread_count(&mut conn, 1).unwrap(), 1);
    let archived = inbox
        .conversations(&mut conn, 1, ConversationsQuery::new().archived())
        .unwrap();
    assert_eq!(archived[0].unread_count, 0);
    assert_eq!(conn.conversation_rows(), conn.expected_conversation_rows());
}

fn archive_is_per_side_and_idempotent<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    inbox.send_message(&mut conn, 1, 2, "hi").unwrap();
    inbox.archive_conversation(&mut conn, 1, 2).unwrap();
    inbox.archive_conversation(&mut conn, 1, 2).unwrap();
    let of = |conn: &mut _, user, q| partners_in(&inbox.conversations(conn, user, q).unwrap());
    assert!(of(&mut conn, 1, ConversationsQuery::new()).is_empty());
    assert_eq!(of(&mut conn, 2, ConversationsQuery::new()), [1]);
    inbox.unarchive_conversation(&mut conn, 1, 2).unwrap();
    inbox.unarchive_conversation(&mut conn, 1, 2).unwrap();
    assert_eq!(of(&mut conn, 1, ConversationsQuery::new()), [2]);
    // Unarchiving what was never archived, or a conversation that never was, is fine.
    inbox.unarchive_conversation(&mut conn, 2, 1).unwrap();
    inbox.unarchive_conversation(&mut conn, 8, 9).unwrap();
    assert_eq!(of(&mut conn, 2, ConversationsQuery::new()), [1]);
}

fn archiving_before_the_first_message_applies_once_it_exists<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    inbox.archive_conversation(&mut conn, 1, 2).unwrap();
    assert!(inbox
        .conversations(&mut conn, 1, ConversationsQuery::new().archived())
        .unwrap()
        .is_empty());
    assert!(inbox
        .conversation_partners(&mut conn, 1)
        .unwrap()
        .is_empty());
    // Its first message is a new message: the conversation arrives in the inbox.
    let m = inbox.send_message(&mut conn, 2, 1, "hello").unwrap();
    let active = inbox
        .conversations(&mut conn, 1, ConversationsQuery::new())
        .unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].last_message, m);
    assert_eq!(active[0].unread_count, 1);
    assert_eq!(conn.conversation_rows(), conn.expected_conversation_rows());
}

fn archiving_with_oneself_does_nothing<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    inbox.archive_conversation(&mut conn, 1, 1).unwrap();
    inbox.unarchive_conversation(&mut conn, 1, 1).unwrap();
    assert!(conn.conversation_rows().is_empty());
    assert!(inbox
        .conversations(&mut conn, 1, ConversationsQuery::new().archived())
        .unwrap()
        .is_empty());
}

fn purge_removes_archive_flags_both_ways<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    inbox.send_message(&mut conn, 1, 2, "hi").unwrap();
    inbox.send_message(&mut conn, 2, 3, "hi").unwrap();
    inbox.archive_conversation(&mut conn, 1, 2).unwrap();
    inbox.archive_conversation(&mut conn, 2, 1).unwrap();
    inbox.archive_conversation(&mut conn, 3, 2).unwrap();
    inbox.archive_conversation(&mut conn, 2, 4).unwrap(); // no message yet
    inbox.purge_user(&mut conn, 2).unwrap();
    for user in [1, 2, 3, 4] {
        for query in [
            ConversationsQuery::new(),
            ConversationsQuery::new().archived(),
        ] {
            assert!(inbox
                .conversations(&mut conn, user, query)
                .unwrap()
                .is_empty());
        }
    }
    assert_eq!(conn.conversation_rows_mentioning(2), 0);
}

// ------------------------------------------------------------------ edit

fn an_edit_changes_the_text_and_keeps_the_rest<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let first = inbox.send_message(&mut conn, 1, 2, "Lunhc?").unwrap();
    let read = inbox.read_message_as(&mut conn, 2, first.id).unwrap();
    inbox
        .send_message(&mut conn, 3, 2, "later, elsewhere")
        .unwrap();
    let before = Utc::now() - Duration::seconds(1);
    let edited = inbox
        .edit_message(&mut conn, 1, first.id, "Lunch?")
        .unwrap();
    assert_eq!(edited.content, "Lunch?");
    assert_eq!(
        (edited.sent_at, edited.read_at),
        (first.sent_at, read.read_at)
    );
    let at = edited.edited_at.expect("edited_at");
    assert!(at >= before && at <= Utc::now());
    assert_eq!(
        inbox
            .conversation(&mut conn, 2, 1, ConversationQuery::new())
            .unwrap(),
        std::slice::from_ref(&edited)
    );
    // The summary shows it; the inbox keeps its order.
    let rows = inbox
        .conversations(&mut conn, 2, ConversationsQuery::new())
        .unwrap();
    assert_eq!(partners_in(&rows), [3, 1]);
    assert_eq!(rows[1].last_message, edited);
    // Again: edited_at moves on.
    let again = inbox
        .edit_message(&mut conn, 1, first.id, "Lunch at 12?")
        .unwrap();
    assert!(again.edited_at >= edited.edited_at);
    assert_eq!(conn.conversation_rows(), conn.expected_conversation_rows());
}

fn an_edit_to_the_same_text_changes_and_fires_nothing<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let edits = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&edits);
    inbox
        .signals()
        .on_message_edited(move |e| sink.lock().unwrap().push((e.message.clone(), e.muted)));
    let m = inbox.send_message(&mut conn, 1, 2, "same").unwrap();
    assert_eq!(inbox.edit_message(&mut conn, 1, m.id, "same").unwrap(), m);
    assert!(edits.lock().unwrap().is_empty());
    inbox.mute_conversation(&mut conn, 2, 1).unwrap();
    let changed = inbox.edit_message(&mut conn, 1, m.id, "changed").unwrap();
    assert_eq!(*edits.lock().unwrap(), [(changed, true)]);
}

fn an_edit_does_not_bring_back_an_archived_conversation<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let m = inbox.send_message(&mut conn, 1, 2, "hi").unwrap();
    inbox.archive_conversation(&mut conn, 2, 1).unwrap();
    inbox.edit_message(&mut conn, 1, m.id, "hello").unwrap();
    assert!(inbox
        .conversations(&mut conn, 2, ConversationsQuery::new())
        .unwrap()
        .is_empty());
    let archived = inbox
        .conversations(&mut conn, 2, ConversationsQuery::new().archived())
        .unwrap();
    assert_eq!(archived[0].last_message.content, "hello");
}

fn edit_checks_come_in_the_contract_order<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(
        Inbox::builder()
            .max_message_chars(10)
            .edit_window(Duration::minutes(15)),
    );
    inbox.signals().on_before_send(|d| {
        if d.content.contains("spam") {
            Err(format!("no spam from {} to {}", d.sender, d.recipient))
        } else {
            Ok(())
        }
    });
    let m = inbox.send_message(&mut conn, 1, 2, "hello").unwrap();
    let old = inbox.send_message(&mut conn, 1, 2, "old").unwrap();
    conn.set_sent_at(old.id, Utc::now() - Duration::hours(1));
    let edit = |conn: &mut _, who, id, text| inbox.edit_message(conn, who, id, text);
    assert!(matches!(
        edit(&mut conn, 1, m.id + 100, "x"),
        Err(Error::MessageNotFound(_))
    ));
    assert!(matches!(
        edit(&mut conn, 2, m.id, ""),
        Err(Error::NotAllowed { user: 2, .. })
    ));
    assert!(matches!(
        edit(&mut conn, 7, m.id, ""),
        Err(Error::NotAllowed { user: 7, .. })
    ));
    assert!(matches!(
        edit(&mut conn, 1, old.id, ""),
        Err(Error::EditWindowClosed { message }) if message == old.id
    ));
    assert!(matches!(
        edit(&mut conn, 1, m.id, "  "),
        Err(Error::EmptyMessage)
    ));
    assert!(matches!(
        edit(&mut conn, 1, m.id, "far too long"),
        Err(Error::MessageTooLong {
            length: 12,
            max: 10
        })
    ));
    assert!(matches!(
        edit(&mut conn, 1, m.id, "a\0b"),
        Err(Error::InvalidContent { .. })
    ));
    assert!(matches!(
        edit(&mut conn, 1, m.id, "spam"),
        Err(Error::Rejected { reason }) if reason == "no spam from 1 to 2"
    ));
    inbox.block_user(&mut conn, 2, 1).unwrap();
    assert!(matches!(
        edit(&mut conn, 1, m.id, ""),
        Err(Error::Blocked {
            sender: 1,
            recipient: 2
        })
    ));
    inbox.unblock_user(&mut conn, 2, 1).unwrap();
    inbox.delete_message(&mut conn, 1, m.id).unwrap();
    assert!(matches!(
        edit(&mut conn, 1, m.id, "x"),
        Err(Error::MessageNotFound(_))
    ));
    // Nothing was stored by any of them.
    let texts: Vec<String> = inbox
        .conversation(&mut conn, 2, 1, ConversationQuery::new())
        .unwrap()
        .into_iter()
        .map(|m| m.content)
        .collect();
    assert_eq!(texts, ["hello", "old"]);
    let unsent = inbox.send_message(&mut conn, 1, 2, "bye").unwrap();
    inbox.unsend_message(&mut conn, 1, unsent.id).unwrap();
    assert!(matches!(
        edit(&mut conn, 1, unsent.id, "x"),
        Err(Error::MessageNotFound(_))
    ));
}

// ------------------------------------------------------------------ unsend

fn unsending_removes_a_message_for_both_sides<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let earlier = inbox.send_message(&mut conn, 1, 2, "earlier").unwrap();
    let oops = inbox.send_message(&mut conn, 1, 2, "oops").unwrap();
    inbox.send_message(&mut conn, 1, 3, "only one").unwrap();
    let only = inbox
        .conversation(&mut conn, 1, 3, ConversationQuery::new())
        .unwrap()[0]
        .clone();
    inbox.unsend_message(&mut conn, 1, oops.id).unwrap();
    inbox.unsend_message(&mut conn, 1, only.id).unwrap();
    for (user, partner) in [(1, 2), (2, 1)] {
        assert_eq!(
            ids(&inbox
                .conversation(&mut conn, user, partner, ConversationQuery::new())
                .unwrap()),
            [earlier.id]
        );
        let summary = &inbox
            .conversations(&mut conn, user, ConversationsQuery::new())
            .unwrap()[0];
        assert_eq!(summary.last_message, earlier, "the summary falls back");
    }
    assert_eq!(inbox.unread_count(&mut conn, 2).unwrap(), 1);
    assert_eq!(
        ids(&inbox.unread_messages(&mut conn, 2).unwrap()),
        [earlier.id]
    );
    assert_eq!(inbox.unread_count(&mut conn, 3).unwrap(), 0);
    assert_eq!(inbox.conversation_partners(&mut conn, 1).unwrap(), [2]);
    assert!(inbox
        .conversation_partners(&mut conn, 3)
        .unwrap()
        .is_empty());
    // Every call by its id, unsending again included, is not found.
    let gone = oops.id;
    assert!(
        matches!(inbox.read_message(&mut conn, gone), Err(Error::MessageNotFound(id)) if id == gone)
    );
    assert!(matches!(
        inbox.read_message_as(&mut conn, 2, gone),
        Err(Error::MessageNotFound(_))
    ));
    assert!(matches!(
        inbox.delete_message(&mut conn, 2, gone),
        Err(Error::MessageNotFound(_))
    ));
    assert!(matches!(
        inbox.unsend_message(&mut conn, 1, gone),
        Err(Error::MessageNotFound(_))
    ));
    assert_eq!(conn.conversation_rows(), conn.expected_conversation_rows());
    assert_eq!(
        inbox.purge_user(&mut conn, 1).unwrap(),
        1,
        "only `earlier` is left"
    );
}

fn only_the_sender_may_unsend_what_they_still_see<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let m = inbox.send_message(&mut conn, 1, 2, "hello").unwrap();
    assert!(matches!(
        inbox.unsend_message(&mut conn, 2, m.id),
        Err(Error::NotAllowed { user: 2, message }) if message == m.id
    ));
    assert!(matches!(
        inbox.unsend_message(&mut conn, 9, m.id),
        Err(Error::NotAllowed { user: 9, .. })
    ));
    assert!(matches!(
        inbox.unsend_message(&mut conn, 1, m.id + 1000),
        Err(Error::MessageNotFound(_))
    ));
    inbox.delete_message(&mut conn, 1, m.id).unwrap();
    assert!(matches!(
        inbox.unsend_message(&mut conn, 1, m.id),
        Err(Error::MessageNotFound(_))
    ));
    // Nothing changed for the recipient.
    assert_eq!(inbox.unread_count(&mut conn, 2).unwrap(), 1);
    // A message the recipient deleted can still be unsent; a block does not stop it.
    let n = inbox.send_message(&mut conn, 1, 2, "again").unwrap();
    inbox.delete_message(&mut conn, 2, n.id).unwrap();
    inbox.block_user(&mut conn, 2, 1).unwrap();
    inbox.unsend_message(&mut conn, 1, n.id).unwrap();
    assert_eq!(conn.conversation_rows(), conn.expected_conversation_rows());
}

fn the_edit_window_closes_unsending<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let window = |w: Duration| D::inbox(Inbox::builder().edit_window(w));
    let inbox = window(Duration::minutes(15));
    let old = inbox.send_message(&mut conn, 1, 2, "an hour ago").unwrap();
    conn.set_sent_at(old.id, Utc::now() - Duration::hours(1));
    let recent = inbox
        .send_message(&mut conn, 1, 2, "ten minutes ago")
        .unwrap();
    conn.set_sent_at(recent.id, Utc::now() - Duration::minutes(10));
    assert!(matches!(
        inbox.unsend_message(&mut conn, 1, old.id),
        Err(Error::EditWindowClosed { message }) if message == old.id
    ));
    // Who may not unsend it hears that first.
    assert!(matches!(
        inbox.unsend_message(&mut conn, 2, old.id),
        Err(Error::NotAllowed { .. })
    ));
    for closed in [Duration::zero(), Duration::minutes(-5)] {
        let fresh = inbox.send_message(&mut conn, 1, 2, "just now").unwrap();
        assert!(matches!(
            window(closed).unsend_message(&mut conn, 1, fresh.id),
            Err(Error::EditWindowClosed { .. })
        ));
    }
    inbox.unsend_message(&mut conn, 1, recent.id).unwrap();
    // No window: never closes.
    D::inbox(Inbox::builder())
        .unsend_message(&mut conn, 1, old.id)
        .unwrap();
}

fn message_unsent_fires_once_with_the_message_as_last_stored<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&log);
    inbox.signals().on_message_unsent(move |e| {
        sink.lock()
            .unwrap()
            .push((e.message.clone(), e.sender, e.recipient, e.muted));
    });
    let m = inbox
        .send_message(&mut conn, 1, 2, "read, then unsent")
        .unwrap();
    let read = inbox.read_message_as(&mut conn, 2, m.id).unwrap();
    inbox.mute_conversation(&mut conn, 2, 1).unwrap();
    inbox.unsend_message(&mut conn, 1, m.id).unwrap();
    let _ = inbox.unsend_message(&mut conn, 1, m.id);
    assert_eq!(*log.lock().unwrap(), [(read, 1, 2, true)]);
}

// ------------------------------------------------------------------ mute

/// `(event, message id, muted)` of every `message_sent` and `message_read`.
type MuteLog = Arc<Mutex<Vec<(&'static str, i64, bool)>>>;

/// Records every `message_sent` and `message_read` with its `muted`.
fn recorded_mutes(inbox: &TestInbox) -> MuteLog {
    let log = Arc::new(Mutex::new(Vec::new()));
    let sent = Arc::clone(&log);
    inbox
        .signals()
        .on_message_sent(move |e| sent.lock().unwrap().push(("sent", e.message.id, e.muted)));
    let read = Arc::clone(&log);
    inbox
        .signals()
        .on_message_read(move |e| read.lock().unwrap().push(("read", e.message.id, e.muted)));
    log
}

fn mute_is_a_flag_on_the_summary_and_on_every_event<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let log = recorded_mutes(&inbox);
    inbox.send_message(&mut conn, 2, 1, "before").unwrap();
    inbox.mute_conversation(&mut conn, 1, 2).unwrap();
    let to_muted = inbox.send_message(&mut conn, 2, 1, "while muted").unwrap();
    let from_muted = inbox.send_message(&mut conn, 1, 2, "reply").unwrap();
    let read = inbox.read_message_as(&mut conn, 1, to_muted.id).unwrap();
    inbox.read_message_as(&mut conn, 2, from_muted.id).unwrap();
    let events = log.lock().unwrap().clone();
    assert_eq!(
        events[1..],
        [
            ("sent", to_muted.id, true),
            ("sent", from_muted.id, false),
            ("read", read.id, true),
            ("read", from_muted.id, false),
        ]
    );
    let summary = &inbox
        .conversations(&mut conn, 1, ConversationsQuery::new())
        .unwrap()[0];
    assert!(summary.muted && !summary.archived);
    let other_side = &inbox
        .conversations(&mut conn, 2, ConversationsQuery::new())
        .unwrap()[0];
    assert!(!other_side.muted);
}

fn marking_a_muted_conversation_read_says_so<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let log = recorded_mutes(&inbox);
    for i in 0..3 {
        inbox
            .send_message(&mut conn, 2, 1, &format!("m{i}"))
            .unwrap();
    }
    inbox.mute_conversation(&mut conn, 1, 2).unwrap();
    let page = ConversationQuery::new().reversed().limit(1).mark_read();
    inbox.conversation(&mut conn, 1, 2, page).unwrap();
    assert_eq!(inbox.mark_conversation_read(&mut conn, 1, 2).unwrap(), 2);
    let reads: Vec<bool> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.0 == "read")
        .map(|e| e.2)
        .collect();
    assert_eq!(reads, [true, true, true]);
}

fn mute_changes_no_listing_and_no_count<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    inbox.send_message(&mut conn, 2, 1, "one").unwrap();
    inbox.send_message(&mut conn, 3, 1, "two").unwrap();
    inbox.mute_conversation(&mut conn, 1, 2).unwrap();
    assert_eq!(inbox.unread_count(&mut conn, 1).unwrap(), 2);
    assert_eq!(inbox.unread_messages(&mut conn, 1).unwrap().len(), 2);
    assert_eq!(inbox.conversation_partners(&mut conn, 1).unwrap(), [3, 2]);
    let rows = inbox
        .conversations(&mut conn, 1, ConversationsQuery::new())
        .unwrap();
    assert_eq!(partners_in(&rows), [3, 2]);
    assert_eq!(
        rows.iter()
            .map(|r| (r.muted, r.unread_count))
            .collect::<Vec<_>>(),
        [(false, 1), (true, 1)]
    );
    // Archive and mute are independent flags.
    inbox.archive_conversation(&mut conn, 1, 2).unwrap();
    let archived = &inbox
        .conversations(&mut conn, 1, ConversationsQuery::new().archived())
        .unwrap()[0];
    assert!(archived.muted && archived.archived);
    assert_eq!(conn.conversation_rows(), conn.expected_conversation_rows());
}

fn mute_is_per_side_idempotent_and_survives_new_messages<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let log = recorded_mutes(&inbox);
    inbox.mute_conversation(&mut conn, 1, 2).unwrap(); // before the first message
    inbox.mute_conversation(&mut conn, 1, 2).unwrap();
    inbox.send_message(&mut conn, 2, 1, "first").unwrap();
    inbox.send_message(&mut conn, 2, 1, "second").unwrap();
    let muted = |conn: &mut _, user| {
        inbox
            .conversations(conn, user, ConversationsQuery::new())
            .unwrap()[0]
            .muted
    };
    assert!(muted(&mut conn, 1));
    assert!(!muted(&mut conn, 2));
    inbox.unmute_conversation(&mut conn, 1, 2).unwrap();
    inbox.unmute_conversation(&mut conn, 1, 2).unwrap();
    let third = inbox.send_message(&mut conn, 2, 1, "third").unwrap();
    assert!(!muted(&mut conn, 1));
    let sent: Vec<(i64, bool)> = log.lock().unwrap().iter().map(|e| (e.1, e.2)).collect();
    assert_eq!(sent.last(), Some(&(third.id, false)));
    assert_eq!(sent.iter().filter(|e| e.1).count(), 2);
    // With oneself: nothing.
    inbox.mute_conversation(&mut conn, 1, 1).unwrap();
    inbox.unmute_conversation(&mut conn, 1, 1).unwrap();
    // Purge forgets every flag of and about the user.
    inbox.mute_conversation(&mut conn, 2, 1).unwrap();
    inbox.purge_user(&mut conn, 1).unwrap();
    assert_eq!(conn.conversation_rows_mentioning(1), 0);
}

/// A small deterministic generator, so a failure can be replayed.
struct Lcg(u64);
impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

fn counts_stay_exact_after_random_operations<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let mut rng = Lcg(0x5eed);
    let mut sent: Vec<i64> = Vec::new();
    for step in 0..400 {
        let a = 1 + rng.below(5) as i64;
        let b = 1 + (a + rng.below(4) as i64) % 5;
        let result = match rng.below(16) {
            0..=3 => inbox
                .send_message(&mut conn, a, b, &format!("s{step}"))
                .map(|m| sent.push(m.id)),
            4 if !sent.is_empty() => {
                let id = sent[rng.below(sent.len() as u64) as usize];
                inbox.read_message_as(&mut conn, a, id).map(drop)
            }
            5 => inbox.mark_conversation_read(&mut conn, a, b).map(drop),
            6 if !sent.is_empty() => {
                let id = sent[rng.below(sent.len() as u64) as usize];
                inbox.delete_message(&mut conn, a, id)
            }
            7 => {
                let q = ConversationQuery::new().reversed().limit(3).mark_read();
                inbox.conversation(&mut conn, a, b, q).map(drop)
            }
            8 => inbox.block_user(&mut conn, a, b),
            9 => inbox.unblock_user(&mut conn, a, b),
            10 => inbox.archive_conversation(&mut conn, a, b),
            11 => inbox.unarchive_conversation(&mut conn, a, b),
            12 => inbox.mute_conversation(&mut conn, a, b),
            13 => inbox.unmute_conversation(&mut conn, a, b),
            14 if !sent.is_empty() => {
                let id = sent[rng.below(sent.len() as u64) as usize];
                inbox.unsend_message(&mut conn, a, id)
            }
            _ if !sent.is_empty() => {
                let id = sent[rng.below(sent.len() as u64) as usize];
                inbox
                    .edit_message(&mut conn, a, id, &format!("e{step}"))
                    .map(drop)
            }
            _ => Ok(()),
        };
        match result {
            Ok(())
            | Err(Error::NotAllowed { .. } | Error::MessageNotFound(_) | Error::Blocked { .. }) => {
            }
            Err(e) => panic!("step {step}: {e:?}"),
        }
        if step % 50 == 49 {
            assert_eq!(
                conn.conversation_rows(),
                conn.expected_conversation_rows(),
                "after step {step}"
            );
        }
    }
    assert_eq!(conn.conversation_rows(), conn.expected_conversation_rows());
    for user in 1..=5 {
        let unread = inbox.unread_messages(&mut conn, user).unwrap();
        assert_eq!(
            inbox.unread_count(&mut conn, user).unwrap(),
            unread.len() as i64
        );
        // The inbox and the archive together: every conversation once, latest first.
        let mut summaries = inbox
            .conversations(&mut conn, user, ConversationsQuery::new())
            .unwrap();
        let archived = inbox
            .conversations(&mut conn, user, ConversationsQuery::new().archived())
            .unwrap();
        assert!(summaries.iter().all(|s| !s.archived));
        assert!(archived.iter().all(|s| s.archived));
        summaries.extend(archived);
        summaries.sort_by_key(|s| std::cmp::Reverse(s.last_message.id));
        let summed: i64 = summaries.iter().map(|s| s.unread_count).sum();
        assert_eq!(summed, unread.len() as i64, "summary counts of user {user}");
        for s in &summaries {
            let latest = inbox
                .conversation(
                    &mut conn,
                    user,
                    s.partner,
                    ConversationQuery::new().reversed().limit(1),
                )
                .unwrap();
            assert_eq!(latest, std::slice::from_ref(&s.last_message));
        }
        let partners = inbox.conversation_partners(&mut conn, user).unwrap();
        assert_eq!(
            partners,
            summaries.iter().map(|s| s.partner).collect::<Vec<_>>()
        );
        // The search index followed every send, edit, unsend and delete.
        let mut visible: Vec<Message> = Vec::new();
        for partner in &partners {
            visible.extend(
                inbox
                    .conversation(&mut conn, user, *partner, ConversationQuery::new())
                    .unwrap(),
            );
        }
        visible.sort_by_key(|m| std::cmp::Reverse(m.id));
        for word in ["s", "e"] {
            let expected: Vec<i64> = visible
                .iter()
                .filter(|m| m.content.starts_with(word))
                .map(|m| m.id)
                .collect();
            let found = inbox
                .search(&mut conn, user, SearchQuery::new(word))
                .unwrap();
            assert_eq!(ids(&found), expected, "search {word:?} of user {user}");
        }
    }
}

// ------------------------------------------------------------------ search

/// The contract's words: runs of alphanumerics, lowercased.
fn words_of(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// What a search must find, by the contract's definition, among `visible` (newest
/// first): every word of the query starts a word of the message. `None`: no word. (A
/// word of over 64 characters need not be findable: none is here.)
fn expected_search(visible: &[Message], query: &str) -> Option<Vec<i64>> {
    let wanted = words_of(query);
    if wanted.is_empty() {
        return None;
    }
    Some(
        visible
            .iter()
            .filter(|m| {
                let mut have = words_of(&m.content);
                have.retain(|w| w.chars().count() <= 64);
                wanted
                    .iter()
                    .all(|w| have.iter().any(|h| h.starts_with(w.as_str())))
            })
            .map(|m| m.id)
            .collect(),
    )
}

/// Latin with accents and case, punctuation, emoji, numbers, short words and stopwords,
/// CJK, kana, Hangul, Cyrillic, Greek, Arabic, and characters outside every backend's
/// tokenizer (combining marks, mathematical letters, fullwidth forms).
const CORPUS: &[(i64, i64, &str)] = &[
    (1, 2, "Lunch at Café Zoë? 12:30 works"),
    (2, 1, "LUNCH is fine, the cafe on 5th!"),
    (1, 3, "Is it a go? I'm in :-) 🎉🍣"),
    (3, 1, "e-mail me: zoe@example.com (or call 555-0199)"),
    (2, 1, "東京タワーに行きました"),
    (1, 2, "東京 and 大阪, then 한국어 수업"),
    (3, 1, "Привет, как дела? Ελληνικά ok"),
    (1, 3, "مرحبا بالعالم — naïve façade Straße"),
    (2, 1, "x²+y² = z², ½ of 3⅓; Ⅻ o'clock"),
    (3, 1, "𝒜𝓁𝓅𝒽𝒶 ｆｕｌｌ ｗｉｄｔｈ Ｆｕｌｌ"),
    (1, 2, "q quick qq Qatar IRAQ"),
    (2, 1, "a I a the is of to be \"AND\" OR NOT NEAR *"),
    (1, 3, "नमस्ते दुनिया, क्षत्रिय"),
    (3, 1, "don't won't l'été aujourd'hui"),
    (1, 2, "1 22 333 4444 0.5 3,14 007"),
    (2, 1, "ǅemal İstanbul ΣΊΣΥΦΟΣ"),
];

const CORPUS_QUERIES: &[&str] = &[
    "lunch",
    "LUNC",
    "lunch café",
    "cafe",
    "café",
    "caf",
    "zoë",
    "zoe",
    "12",
    "30",
    "5th",
    "5",
    "the",
    "a",
    "i",
    "is it",
    "go",
    "m",
    "東京",
    "東京タ",
    "タワー",
    "大阪",
    "한국",
    "수업",
    "привет",
    "ПРИВ",
    "ελλην",
    "مرحبا",
    "naïve",
    "naive",
    "façade",
    "straße",
    "strasse",
    "x",
    "y²",
    "½",
    "3⅓",
    "ⅻ",
    "o",
    "clock",
    "𝒜",
    "𝒜𝓁",
    "ｆｕｌｌ",
    "ｆｕ",
    "full",
    "q",
    "qq",
    "qu",
    "qatar",
    "iraq",
    "and",
    "or",
    "not",
    "near",
    "नमस्ते",
    "दुनिया",
    "क्ष",
    "don",
    "t",
    "l",
    "été",
    "aujourd",
    "hui",
    "1",
    "22",
    "333",
    "4444",
    "0",
    "3",
    "14",
    "007",
    "00",
    "ǆemal",
    "ǅ",
    "i̇stanbul",
    "İstanbul",
    "σίσυφος",
    "ΣΊΣ",
    "email",
    "e mail",
    "example com",
    "555 0199",
    "lunch zzz",
    "zzz",
];

fn send_corpus<D: Subject>(inbox: &TestInbox, conn: &mut D::Conn) -> Vec<Message> {
    CORPUS
        .iter()
        .map(|(from, to, text)| inbox.send_message(conn, *from, *to, text).unwrap())
        .collect()
}

fn search_finds_every_word_as_a_prefix_across_scripts<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let mut sent = send_corpus::<D>(&inbox, &mut conn);
    sent.reverse();
    for user in [1, 2, 3] {
        let visible: Vec<Message> = sent
            .iter()
            .filter(|m| m.sender_id == user || m.recipient_id == user)
            .cloned()
            .collect();
        for query in CORPUS_QUERIES {
            let expected = expected_search(&visible, query).unwrap();
            let found = inbox
                .search(&mut conn, user, SearchQuery::new(query))
                .unwrap();
            assert_eq!(ids(&found), expected, "user {user} searching {query:?}");
        }
    }
    // The contract's cases, spelled out.
    let hits = |conn: &mut D::Conn, q: &str| {
        contents(&inbox.search(conn, 1, SearchQuery::new(q)).unwrap())
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        hits(&mut conn, "lunc café"),
        ["Lunch at Café Zoë? 12:30 works"]
    );
    assert_eq!(hits(&mut conn, "cafe"), ["LUNCH is fine, the cafe on 5th!"]);
    assert_eq!(hits(&mut conn, "東京").len(), 2, "a CJK run is one word");
    assert!(
        hits(&mut conn, "タワー").is_empty(),
        "only from the start of a run"
    );
    assert_eq!(
        hits(&mut conn, "the a").len(),
        2,
        "stopwords and 1-letter words count"
    );
    assert_eq!(
        hits(&mut conn, "AND OR NOT").len(),
        1,
        "operators are words"
    );
}

fn search_pages_newest_first_by_keyset<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let mut all: Vec<i64> = (0..25)
        .map(|i| {
            let (from, to) = if i % 3 == 0 { (2, 1) } else { (1, 2 + i % 2) };
            inbox
                .send_message(&mut conn, from, to, &format!("note {i}"))
                .unwrap()
                .id
        })
        .collect();
    all.reverse();
    let mut paged = Vec::new();
    let mut query = SearchQuery::new("note").limit(7);
    loop {
        let page = inbox.search(&mut conn, 1, query.clone()).unwrap();
        assert!(page.len() <= 7);
        let Some(last) = page.last() else { break };
        query = SearchQuery::new("note").limit(7).before(last.id);
        paged.extend(ids(&page));
    }
    assert_eq!(paged, all, "every match once, newest first");
    let before = all[3];
    assert_eq!(
        ids(&inbox
            .search(&mut conn, 1, SearchQuery::new("note").before(before))
            .unwrap()),
        all[4..],
        "before is exclusive"
    );
    assert!(inbox
        .search(&mut conn, 1, SearchQuery::new("note").limit(0))
        .unwrap()
        .is_empty());
}

fn search_within_one_conversation<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let with_2 = inbox.send_message(&mut conn, 1, 2, "plan A").unwrap();
    let with_3 = inbox.send_message(&mut conn, 3, 1, "plan B").unwrap();
    inbox.send_message(&mut conn, 2, 3, "plan C").unwrap();
    let in_conversation = |conn: &mut D::Conn, user: i64, partner: i64| {
        ids(&inbox
            .search(conn, user, SearchQuery::new("plan").with(partner))
            .unwrap())
    };
    assert_eq!(in_conversation(&mut conn, 1, 2), [with_2.id]);
    assert_eq!(in_conversation(&mut conn, 1, 3), [with_3.id]);
    assert_eq!(in_conversation(&mut conn, 2, 1), [with_2.id]);
    assert!(
        in_conversation(&mut conn, 1, 1).is_empty(),
        "with oneself: nothing"
    );
    assert!(in_conversation(&mut conn, 1, 4).is_empty());
    assert_eq!(
        ids(&inbox
            .search(&mut conn, 1, SearchQuery::new("plan"))
            .unwrap()),
        [with_3.id, with_2.id],
        "another pair's messages are never found"
    );
    assert!(inbox
        .search(&mut conn, 4, SearchQuery::new("plan"))
        .unwrap()
        .is_empty());
}

fn search_follows_deletes_unsends_edits_and_purges_but_not_blocks<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let find = |conn: &mut D::Conn, user: i64, q: &str| {
        ids(&inbox.search(conn, user, SearchQuery::new(q)).unwrap())
    };
    let deleted = inbox.send_message(&mut conn, 1, 2, "ticket one").unwrap();
    let unsent = inbox.send_message(&mut conn, 1, 2, "ticket two").unwrap();
    let edited = inbox.send_message(&mut conn, 2, 1, "ticket three").unwrap();
    let blocked = inbox.send_message(&mut conn, 3, 1, "ticket four").unwrap();
    let purged = inbox.send_message(&mut conn, 4, 1, "ticket five").unwrap();

    inbox.delete_message(&mut conn, 2, deleted.id).unwrap();
    assert!(
        !find(&mut conn, 2, "ticket").contains(&deleted.id),
        "deleted for me"
    );
    assert!(
        find(&mut conn, 1, "ticket").contains(&deleted.id),
        "not for the other side"
    );

    inbox.unsend_message(&mut conn, 1, unsent.id).unwrap();
    assert!(!find(&mut conn, 1, "ticket").contains(&unsent.id));
    assert!(!find(&mut conn, 2, "ticket").contains(&unsent.id));

    inbox
        .edit_message(&mut conn, 2, edited.id, "voucher three")
        .unwrap();
    assert!(
        !find(&mut conn, 1, "ticket").contains(&edited.id),
        "the old text is gone"
    );
    assert_eq!(find(&mut conn, 1, "vouch"), [edited.id]);
    assert_eq!(find(&mut conn, 2, "vouch"), [edited.id]);
    // An edit does not bring a message back to a side that deleted it.
    inbox.delete_message(&mut conn, 1, edited.id).unwrap();
    inbox
        .edit_message(&mut conn, 2, edited.id, "voucher again")
        .unwrap();
    assert!(find(&mut conn, 1, "voucher").is_empty());
    assert_eq!(find(&mut conn, 2, "again"), [edited.id]);

    inbox.block_user(&mut conn, 1, 3).unwrap();
    assert!(
        find(&mut conn, 1, "ticket").contains(&blocked.id),
        "history is kept"
    );

    inbox.purge_user(&mut conn, 4).unwrap();
    assert!(!find(&mut conn, 1, "ticket").contains(&purged.id));
    assert!(find(&mut conn, 4, "ticket").is_empty());
    assert_eq!(find(&mut conn, 1, "ticket"), [blocked.id, deleted.id]);

    // A message both sides deleted is gone from the index with its row.
    inbox.delete_message(&mut conn, 1, deleted.id).unwrap();
    assert!(find(&mut conn, 1, "one").is_empty());
    assert_eq!(conn.search_rows_of(deleted.id), 0);
}

fn a_search_without_a_word_is_an_error<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    inbox.send_message(&mut conn, 1, 2, "anything").unwrap();
    for text in ["", "   ", "?!", "🎉🎉 🍣", "\0", "-_-'\"*", "（）"] {
        assert!(
            matches!(
                inbox.search(&mut conn, 1, SearchQuery::new(text)),
                Err(Error::EmptySearch)
            ),
            "{text:?}"
        );
    }
}

fn search_writes_nothing_and_fires_nothing<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    let unread = inbox.send_message(&mut conn, 1, 2, "read me").unwrap();
    let fired = recorded(&inbox);
    let found = inbox
        .search(&mut conn, 2, SearchQuery::new("read"))
        .unwrap();
    assert_eq!(found, vec![unread]);
    assert!(found[0].is_unread());
    assert_eq!(inbox.unread_count(&mut conn, 2).unwrap(), 1);
    assert!(fired.lock().unwrap().is_empty());
}

fn long_words_and_query_syntax_never_widen_a_search<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    // A word of 64 letters is findable, by any prefix; one of 200 need not be, but its
    // message still is, by its other words, and nothing else matches.
    let long = "é".repeat(64);
    let longer = "a".repeat(200);
    let with_long = inbox
        .send_message(&mut conn, 1, 2, &format!("see {long}"))
        .unwrap();
    let with_longer = inbox
        .send_message(&mut conn, 1, 2, &format!("look {longer}"))
        .unwrap();
    let find =
        |conn: &mut D::Conn, q: &str| ids(&inbox.search(conn, 1, SearchQuery::new(q)).unwrap());
    assert_eq!(find(&mut conn, &long), [with_long.id]);
    assert_eq!(find(&mut conn, &"é".repeat(10)), [with_long.id]);
    assert_eq!(find(&mut conn, "look"), [with_longer.id]);
    assert!(find(&mut conn, &"é".repeat(65)).is_empty());
    assert!(find(&mut conn, &format!("look {}", "a".repeat(150))).is_empty());

    // Random punctuation and every backend's operators around corpus words: never a
    // syntax error, never more (or less) than the contract's answer.
    let sent = send_corpus::<D>(&inbox, &mut conn);
    let mut visible: Vec<Message> = vec![with_long, with_longer];
    visible.extend(
        sent.into_iter()
            .filter(|m| m.sender_id == 1 || m.recipient_id == 1),
    );
    visible.sort_by_key(|m| std::cmp::Reverse(m.id));
    const NOISE: &[&str] = &[
        "\"", "*", "-", "+", "(", ")", ":", "^", "~", "<", ">", "@", "&", "|", "!", "'", "\\", "%",
        "_", "NEAR", "AND", "OR", "NOT", "near/2", "col:", ":*", "{", "}", "[", "]", ";", "--",
        "/*", "*/", "''", "\0", "\t", "\n", "🎉", "\u{200b}", "\u{feff}", "?", ",", ".",
    ];
    const WORDS: &[&str] = &[
        "lunch", "caf", "東京", "a", "the", "is", "q", "x", "1", "ticket", "é", "zz", "naïve",
        "ｆｕ", "𝒜",
    ];
    let mut rng = Lcg(0xfeed);
    for round in 0..150 {
        let mut query = String::new();
        for _ in 0..1 + rng.below(6) {
            if rng.below(3) == 0 {
                query.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
            }
            query.push_str(NOISE[rng.below(NOISE.len() as u64) as usize]);
            if rng.below(2) == 0 {
                query.push(' ');
            }
        }
        let result = inbox.search(&mut conn, 1, SearchQuery::new(&query));
        match expected_search(&visible, &query) {
            None => assert!(
                matches!(result, Err(Error::EmptySearch)),
                "round {round}: {query:?}: {result:?}"
            ),
            Some(expected) => assert_eq!(
                ids(&result.unwrap_or_else(|e| panic!("round {round}: {query:?}: {e:?}"))),
                expected,
                "round {round}: {query:?}"
            ),
        }
    }
}

fn a_page_of_results_is_the_same_however_many_rows_the_user_has<D: Subject>(db: &D) {
    let mut conn = db.conn();
    let inbox = D::inbox(Inbox::builder());
    // More messages than a search reads before asking the full-text index.
    let mut sent: Vec<Message> = Vec::new();
    for i in 0..260 {
        let text = if i % 10 == 0 {
            format!("common rare {i}")
        } else {
            format!("common {i}")
        };
        let (from, to) = if i % 2 == 0 {
            (1, 2 + i % 3)
        } else {
            (2 + i % 3, 1)
        };
        sent.push(inbox.send_message(&mut conn, from, to, &text).unwrap());
    }
    sent.reverse();
    let expect = |word: &str, partner: Option<i64>, before: Option<i64>, limit: usize| {
        sent.iter()
            .filter(|m| m.content.split(' ').any(|w| w.starts_with(word)))
            .filter(|m| partner.is_none_or(|p| m.partner_of(1) == p))
            .filter(|m| before.is_none_or(|b| m.id < b))
            .take(limit)
            .map(|m| m.id)
            .collect::<Vec<_>>()
    };
    let middle = sent[130].id;
    for (word, partner, before, limit) in [
        ("comm", None, None, 5),     // a full page among the latest rows
        ("rare", None, None, 20),    // just enough among them
        ("rare", None, None, 30),    // not enough: the full-text index answers
        ("rare", Some(3), None, 10), // within one conversation
        ("common", None, Some(middle), 50),
        ("rare", None, Some(middle), 40),
        ("nothing", None, None, 10),
    ] {
        let mut query = SearchQuery::new(word).limit(limit as u32);
        if let Some(p) = partner {
            query = query.with(p);
        }
        if let Some(b) = before {
            query = query.before(b);
        }
        let found = inbox.search(&mut conn, 1, query).unwrap();
        assert_eq!(
            ids(&found),
            expect(word, partner, before, limit),
            "{word:?} with {partner:?} before {before:?} limit {limit}"
        );
    }
}

backend_suite!(
    flavours:
    send_message_returns_the_stored_row,
    timestamps_are_utc_to_the_microsecond,
    host_queries_filter_timestamp_columns_with_utc_timestamp,
    ids_increase_and_are_never_reused,
    message_sent_fires_after_the_write_with_the_stored_row,
    handlers_run_in_registration_order,
    a_handler_may_register_handlers_which_fire_from_the_next_event,
    every_invalid_message_is_a_typed_error_and_stores_nothing,
    error_messages_name_the_ids_involved,
    long_messages_round_trip,
    unicode_round_trips,
    a_caller_transaction_can_roll_back_a_send,
    unread_messages_lists_unread_received_oldest_first,
    read_message_marks_read_and_fires_once,
    reading_a_missing_message_is_not_found,
    recipient_reading_as_themselves_marks_read,
    sender_views_without_marking_read,
    stranger_cannot_read_a_message,
    read_message_formatted_prefixes_the_sender_name,
    partners_are_listed_once_most_recent_first,
    a_user_with_no_messages_has_no_partners,
    conversation_holds_both_directions_oldest_first,
    limit_takes_the_oldest_and_reversed_limit_the_latest,
    keyset_pages_cover_the_conversation_exactly_once,
    conversation_mark_read_marks_only_what_the_viewer_received,
    conversation_without_mark_read_changes_nothing,
    migrations_are_idempotent,
    conversations_summarise_each_partner_latest_first,
    conversations_page_by_keyset,
    mark_conversation_read_marks_everything_from_the_partner,
    read_all_while_a_new_message_arrives,
    delete_hides_a_message_from_one_side_only,
    a_message_both_sides_deleted_is_gone,
    deleting_the_last_message_shows_the_previous_one,
    only_a_participant_can_delete_and_only_once,
    a_blocked_sender_gets_blocked_and_nothing_is_stored,
    blocking_keeps_history_but_not_unread_counts,
    block_then_unblock,
    blocking_oneself_is_an_error,
    a_before_send_policy_can_veto_and_nothing_is_stored,
    purge_user_removes_everything_of_that_user,
    counts_stay_exact_after_random_operations,
    archiving_hides_a_conversation_until_a_new_message,
    the_archive_lists_only_archived_conversations_keyset_paged,
    archive_changes_no_count_and_no_other_listing,
    archive_is_per_side_and_idempotent,
    archiving_before_the_first_message_applies_once_it_exists,
    archiving_with_oneself_does_nothing,
    purge_removes_archive_flags_both_ways,
    mute_is_a_flag_on_the_summary_and_on_every_event,
    marking_a_muted_conversation_read_says_so,
    mute_changes_no_listing_and_no_count,
    mute_is_per_side_idempotent_and_survives_new_messages,
    unsending_removes_a_message_for_both_sides,
    an_edit_changes_the_text_and_keeps_the_rest,
    an_edit_to_the_same_text_changes_and_fires_nothing,
    an_edit_does_not_bring_back_an_archived_conversation,
    edit_checks_come_in_the_contract_order,
    only_the_sender_may_unsend_what_they_still_see,
    the_edit_window_closes_unsending,
    message_unsent_fires_once_with_the_message_as_last_stored,
    a_panicking_handler_stops_no_other_handler,
    every_message_of_a_batch_reaches_every_handler_despite_a_panic,
    a_marked_page_above_the_chunk_size_comes_back_read,
    a_flooded_user_can_list_and_mark_everything,
    reads_that_change_nothing_work_on_a_read_only_connection,
    the_first_fault_in_validation_order_is_reported,
    with_oneself_a_conversation_is_empty_and_nothing_is_marked,
    a_deleted_message_is_not_found_to_whoever_deleted_it,
    within_a_conversation_a_higher_id_is_never_earlier,
    search_finds_every_word_as_a_prefix_across_scripts,
    search_pages_newest_first_by_keyset,
    search_within_one_conversation,
    search_follows_deletes_unsends_edits_and_purges_but_not_blocks,
    a_search_without_a_word_is_an_error,
    search_writes_nothing_and_fires_nothing,
    long_words_and_query_syntax_never_widen_a_search,
    a_page_of_results_is_the_same_however_many_rows_the_user_has,
);
