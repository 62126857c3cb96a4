//! The Store conformance suite: the behaviour every [`Store`] implementation
//! must show, written once against [`SharedStore`] and run against each
//! backend by [`conformance!`].
//!
//! Each case is an `async fn(SharedStore)` below; the macro turns it into a
//! module with one test per backend, so a failure reads
//! `store_conformance::<case>::<backend>`. Every case gets a fresh store
//! (for PostgreSQL, a fresh database), so cases never see each other's rows.

use crate::support::store::{AppendAccepted, event, message, room, user};
use futures_util::future::join_all;
use parley::domain::{
    DisplayName, Email, Limit, MessageBody, NotificationId, PostBody, PostId, Reason, ReportKind,
    RestrictionKind, RoomId, RoomKind, RoomRole, SearchPrefix, Seq, Until, UserId, Username,
};
use parley::store::Revocation;
use parley::store::{
    CursorMove, HistoryItem, HistoryQuery, NewNotification, NewPost, NewRefreshToken, NewReport,
    NewRestriction, NewUser, Notification, Post, ProfilePatch, ReactionCount, RefreshSpend,
    RoomUnread, SharedStore, StoreError, User,
};
use parley_actors::model::{Action, Appended, Emoji, EventData, Refusal, StoredEvent};
use parley_actors::ports::LogError;

/// A refresh token spent before is reported reused at once.
const NO_GRACE: std::time::Duration = std::time::Duration::ZERO;

/// One module per case with a test per backend. The runtime is
/// multi-threaded so that concurrent cases really run in parallel against
/// the in-process store too.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => { $(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn memory() {
                super::$name(std::sync::Arc::new(parley::store::memory::MemoryStore::new())).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                super::$name(crate::support::db::fresh_pg_store().await).await
            }
        }
    )* };
}

conformance!(
    usernames_are_unique_ignoring_case,
    emails_are_unique,
    a_profile_patch_changes_only_the_fields_it_names,
    following_is_idempotent_and_lists_each_follower_once,
    the_feed_shows_own_and_followed_posts_newest_first,
    the_feed_pages_with_before_without_skipping_or_repeating,
    a_deleted_post_is_gone_and_deleting_it_again_is_not_found,
    creating_a_room_makes_the_creator_its_owner,
    room_access_reads_the_room_and_the_callers_role_together,
    public_rooms_are_visible_to_all_and_others_to_members_only,
    visible_rooms_page_oldest_first_with_after,
    adding_a_member_keeps_an_existing_role,
    removing_a_member_twice_is_not_found_the_second_time,
    concurrent_appends_get_gapless_seqs_from_one,
    a_repeated_client_id_returns_the_original_and_takes_no_seq,
    a_client_id_repeated_within_one_batch_returns_the_first,
    appending_to_an_unknown_room_fails_and_stores_nothing_of_the_batch,
    range_honours_after_before_and_limit,
    tail_returns_the_newest_page_in_ascending_order,
    an_empty_room_has_last_seq_zero_and_no_messages,
    an_unknown_room_has_no_messages_and_no_last_seq,
    a_refresh_token_is_spent_once_then_reported_reused,
    an_expired_refresh_token_is_expired_even_revoked_and_an_unknown_one_unknown,
    revoking_a_family_makes_its_unspent_tokens_reused,
    a_refresh_token_spent_within_the_grace_window_is_spent_again_unless_revoked,
    notifications_are_newest_first_and_page_with_before,
    the_unread_filter_and_count_see_only_unread_notifications,
    marking_another_users_notification_read_is_not_found,
    mark_all_read_returns_how_many_were_unread,
    a_notification_batch_reaches_every_known_user_once_and_skips_unknown_ones,
    edits_and_reactions_fold_into_history_within_and_across_batches,
    the_rules_refuse_an_event_without_taking_a_seq,
    a_delete_erases_the_body_its_edits_and_its_reactions,
    a_thread_lists_the_replies_to_one_message,
    read_cursors_only_move_forward_and_own_messages_move_them,
    unread_counts_live_messages_by_others_after_the_cursor,
    a_deleted_messages_notifications_are_withdrawn,
    user_search_matches_a_prefix_of_username_or_display_name_ignoring_case,
    logging_out_everywhere_revokes_every_family_of_the_user_only,
    revoking_one_family_leaves_the_others_and_is_polled_in_record_order,
);

// --- helpers -----------------------------------------------------------------

async fn post(store: &SharedStore, author: &User, body: &str) -> Post {
    let new = NewPost {
        id: PostId::new(),
        author: author.id,
        body: PostBody::parse(body).unwrap(),
    };
    store.create_post(new).await.unwrap()
}

fn limit(n: i64) -> Limit {
    Limit::parse(Some(n)).unwrap()
}

/// Appends one message and returns what the store made of it.
async fn publish(store: &SharedStore, room: RoomId, author: &User, client_id: &str) -> Appended {
    let mut appended = store
        .append_accepted(&[message(room, author, client_id)])
        .await
        .unwrap();
    assert_eq!(appended.len(), 1);
    appended.remove(0)
}

/// A room holding messages with seqs 1 to `n`.
async fn room_with_messages(store: &SharedStore, n: usize) -> RoomId {
    let author = user(&**store, "writer").await;
    let room = room(&**store, &author, RoomKind::Public).await;
    let batch: Vec<_> = (1..=n)
        .map(|i| message(room.id, &author, &format!("m{i}")))
        .collect();
    store.append_accepted(&batch).await.unwrap();
    room.id
}

fn seqs(messages: &[StoredEvent]) -> Vec<i64> {
    messages.iter().map(|m| m.seq.0).collect()
}

fn sorted(mut ids: Vec<UserId>) -> Vec<UserId> {
    ids.sort();
    ids
}

fn token(user: &User, family: uuid::Uuid, hash: &[u8], valid_for: i64) -> NewRefreshToken {
    NewRefreshToken {
        hash: hash.to_vec(),
        user: user.id,
        family,
        expires_at: chrono::Utc::now() + chrono::Duration::minutes(valid_for),
    }
}

async fn notify(store: &SharedStore, user: &User, n: usize) -> Notification {
    let new = NewNotification {
        user: user.id,
        kind: "mention".into(),
        payload: serde_json::json!({ "n": n }),
    };
    store.create_notification(new).await.unwrap()
}

// --- users and follows -------------------------------------------------------

async fn usernames_are_unique_ignoring_case(store: SharedStore) {
    let ada = user(&*store, "Ada").await;
    let clash = NewUser {
        id: UserId::new(),
        username: Username::parse("aDA").unwrap(),
        email: Email::parse("other@example.com").unwrap(),
        password_hash: "$argon2id$stub".into(),
    };
    let err = store.create_user(clash).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict("username")), "{err:?}");
    let found = store.user_by_username("ADA").await.unwrap();
    assert_eq!(found, Some(ada.clone()));
    assert_eq!(ada.username, "Ada", "the username keeps its case");
    assert_eq!(store.user_by_username("grace").await.unwrap(), None);
}

async fn emails_are_unique(store: SharedStore) {
    let ada = user(&*store, "ada").await;
    let clash = NewUser {
        id: UserId::new(),
        username: Username::parse("grace").unwrap(),
        email: Email::parse("ada@example.com").unwrap(),
        password_hash: "$argon2id$stub".into(),
    };
    let err = store.create_user(clash).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict("email")), "{err:?}");
    let found = store.user_by_email("ada@example.com").await.unwrap();
    assert_eq!(found, Some(ada.clone()));
    let hash = store.password_hash(ada.id).await.unwrap();
    assert_eq!(hash.as_deref(), Some("$argon2id$stub$ada"));
    assert_eq!(store.user(ada.id).await.unwrap(), Some(ada));
}

async fn a_profile_patch_changes_only_the_fields_it_names(store: SharedStore) {
    let ada = user(&*store, "ada").await;
    assert_eq!((ada.display_name.as_str(), ada.bio.as_str()), ("", ""));
    let name_only = ProfilePatch {
        display_name: Some(DisplayName::parse("Ada Lovelace").unwrap()),
        bio: None,
    };
    store.update_profile(ada.id, name_only).await.unwrap();
    let bio_only = ProfilePatch {
        display_name: None,
        bio: Some("Analyst".into()),
    };
    let patched = store.update_profile(ada.id, bio_only).await.unwrap();
    assert_eq!(patched.display_name, "Ada Lovelace");
    assert_eq!(patched.bio, "Analyst");
    assert_eq!(patched.username, ada.username);
    assert_eq!(store.user(ada.id).await.unwrap(), Some(patched));
    let unknown = store
        .update_profile(UserId::new(), ProfilePatch::default())
        .await;
    assert!(matches!(unknown, Err(StoreError::NotFound)), "{unknown:?}");
}

async fn following_is_idempotent_and_lists_each_follower_once(store: SharedStore) {
    let (ada, bob, cyd) = (
        user(&*store, "ada").await,
        user(&*store, "bob").await,
        user(&*store, "cyd").await,
    );
    store.follow(bob.id, ada.id).await.unwrap();
    store.follow(bob.id, ada.id).await.unwrap();
    store.follow(cyd.id, ada.id).await.unwrap();
    let followers = store.followers(ada.id).await.unwrap();
    assert_eq!(sorted(followers), sorted(vec![bob.id, cyd.id]));
    assert_eq!(store.followers(bob.id).await.unwrap(), vec![]);

    store.unfollow(bob.id, ada.id).await.unwrap();
    store.unfollow(bob.id, ada.id).await.unwrap();
    assert_eq!(store.followers(ada.id).await.unwrap(), vec![cyd.id]);

    let unknown = store.follow(ada.id, UserId::new()).await;
    assert!(matches!(unknown, Err(StoreError::NotFound)), "{unknown:?}");
    let unknown = store.follow(UserId::new(), ada.id).await;
    assert!(matches!(unknown, Err(StoreError::NotFound)), "{unknown:?}");
}

// --- posts and the feed ------------------------------------------------------

async fn the_feed_shows_own_and_followed_posts_newest_first(store: SharedStore) {
    let (ada, bob, cyd) = (
        user(&*store, "ada").await,
        user(&*store, "bob").await,
        user(&*store, "cyd").await,
    );
    store.follow(ada.id, bob.id).await.unwrap();
    let first = post(&store, &ada, "ada 1").await;
    let second = post(&store, &bob, "bob 1").await;
    post(&store, &cyd, "cyd 1, not followed").await;
    let third = post(&store, &ada, "ada 2").await;

    let feed = store.feed(ada.id, None, limit(50)).await.unwrap();
    assert_eq!(feed, vec![third, second.clone(), first]);
    let bobs = store.feed(bob.id, None, limit(50)).await.unwrap();
    assert_eq!(bobs, vec![second], "following is one-way");
}

async fn the_feed_pages_with_before_without_skipping_or_repeating(store: SharedStore) {
    let (ada, bob) = (user(&*store, "ada").await, user(&*store, "bob").await);
    store.follow(ada.id, bob.id).await.unwrap();
    let mut expected = Vec::new();
    for i in 0..7 {
        let author = if i % 2 == 0 { &ada } else { &bob };
        expected.push(post(&store, author, &format!("post {i}")).await.id);
    }
    expected.reverse();

    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = store.feed(ada.id, before, limit(3)).await.unwrap();
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        seen.extend(page.iter().map(|p| p.id));
    }
    assert_eq!(seen, expected);
}

async fn a_deleted_post_is_gone_and_deleting_it_again_is_not_found(store: SharedStore) {
    let ada = user(&*store, "ada").await;
    let created = post(&store, &ada, "hello").await;
    assert_eq!(store.post(created.id).await.unwrap(), Some(created.clone()));
    store.delete_post(created.id).await.unwrap();
    assert_eq!(store.post(created.id).await.unwrap(), None);
    assert_eq!(store.feed(ada.id, None, limit(50)).await.unwrap(), vec![]);
    let again = store.delete_post(created.id).await;
    assert!(matches!(again, Err(StoreError::NotFound)), "{again:?}");
}

// --- rooms and members -------------------------------------------------------

async fn creating_a_room_makes_the_creator_its_owner(store: SharedStore) {
    let ada = user(&*store, "ada").await;
    let created = room(&*store, &ada, RoomKind::Private).await;
    assert_eq!(created.kind, RoomKind::Private);
    assert_eq!(created.created_by, ada.id);
    assert_eq!(store.room(created.id).await.unwrap(), Some(created.clone()));
    let role = store.role(created.id, ada.id).await.unwrap();
    assert_eq!(role, Some(RoomRole::Owner));
    let members = store.members(created.id).await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(
        (members[0].user, members[0].role),
        (ada.id, RoomRole::Owner)
    );
    assert_eq!(store.room(RoomId::new()).await.unwrap(), None);
}

async fn room_access_reads_the_room_and_the_callers_role_together(store: SharedStore) {
    let (ada, bob) = (user(&*store, "ada").await, user(&*store, "bob").await);
    let created = room(&*store, &ada, RoomKind::Private).await;
    let role_of = |user: UserId| {
        let (store, created) = (store.clone(), created.clone());
        async move {
            let access = store.room_access(created.id, user).await.unwrap().unwrap();
            assert_eq!(access.room, created);
            assert_eq!(
                (access.banned, access.muted, access.blocked_by_peer),
                (None, None, false)
            );
            access.role
        }
    };
    assert_eq!(role_of(ada.id).await, Some(RoomRole::Owner));
    assert_eq!(role_of(bob.id).await, None);
    store
        .add_member(created.id, bob.id, RoomRole::Admin)
        .await
        .unwrap();
    assert_eq!(role_of(bob.id).await, Some(RoomRole::Admin));
    let unknown = store.room_access(RoomId::new(), ada.id).await.unwrap();
    assert_eq!(unknown, None);
}

async fn public_rooms_are_visible_to_all_and_others_to_members_only(store: SharedStore) {
    let (ada, bob) = (user(&*store, "ada").await, user(&*store, "bob").await);
    let public = room(&*store, &ada, RoomKind::Public).await;
    let private = room(&*store, &ada, RoomKind::Private).await;
    let direct = room(&*store, &ada, RoomKind::Direct).await;
    let visible = |user: UserId| {
        let store = store.clone();
        async move {
            let rooms = store.rooms_visible_to(user, None, limit(50)).await.unwrap();
            rooms.into_iter().map(|r| r.id).collect::<Vec<_>>()
        }
    };

    assert_eq!(
        visible(ada.id).await,
        vec![public.id, private.id, direct.id]
    );
    assert_eq!(visible(bob.id).await, vec![public.id]);
    store
        .add_member(direct.id, bob.id, RoomRole::Member)
        .await
        .unwrap();
    assert_eq!(visible(bob.id).await, vec![public.id, direct.id]);
    store.remove_member(direct.id, bob.id).await.unwrap();
    assert_eq!(visible(bob.id).await, vec![public.id]);
}

async fn visible_rooms_page_oldest_first_with_after(store: SharedStore) {
    let ada = user(&*store, "ada").await;
    let mut expected = Vec::new();
    for _ in 0..5 {
        expected.push(room(&*store, &ada, RoomKind::Public).await.id);
    }
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .rooms_visible_to(ada.id, after, limit(2))
            .await
            .unwrap();
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        seen.extend(page.iter().map(|r| r.id));
    }
    assert_eq!(seen, expected);
}

async fn adding_a_member_keeps_an_existing_role(store: SharedStore) {
    let (ada, bob) = (user(&*store, "ada").await, user(&*store, "bob").await);
    let room = room(&*store, &ada, RoomKind::Private).await;
    store
        .add_member(room.id, bob.id, RoomRole::Member)
        .await
        .unwrap();
    store
        .add_member(room.id, bob.id, RoomRole::Admin)
        .await
        .unwrap();
    store
        .add_member(room.id, ada.id, RoomRole::Member)
        .await
        .unwrap();
    assert_eq!(
        store.role(room.id, bob.id).await.unwrap(),
        Some(RoomRole::Member)
    );
    assert_eq!(
        store.role(room.id, ada.id).await.unwrap(),
        Some(RoomRole::Owner)
    );
    let members = store.members(room.id).await.unwrap();
    let ids = members.iter().map(|m| m.user).collect();
    assert_eq!(sorted(ids), sorted(vec![ada.id, bob.id]));

    let unknown_user = store
        .add_member(room.id, UserId::new(), RoomRole::Member)
        .await;
    assert!(
        matches!(unknown_user, Err(StoreError::NotFound)),
        "{unknown_user:?}"
    );
    let unknown_room = store
        .add_member(RoomId::new(), bob.id, RoomRole::Member)
        .await;
    assert!(
        matches!(unknown_room, Err(StoreError::NotFound)),
        "{unknown_room:?}"
    );
}

async fn removing_a_member_twice_is_not_found_the_second_time(store: SharedStore) {
    let (ada, bob) = (user(&*store, "ada").await, user(&*store, "bob").await);
    let room = room(&*store, &ada, RoomKind::Private).await;
    store
        .add_member(room.id, bob.id, RoomRole::Member)
        .await
        .unwrap();
    store.remove_member(room.id, bob.id).await.unwrap();
    assert_eq!(store.role(room.id, bob.id).await.unwrap(), None);
    let again = store.remove_member(room.id, bob.id).await;
    assert!(matches!(again, Err(StoreError::NotFound)), "{again:?}");
}

// --- the message log ---------------------------------------------------------

async fn concurrent_appends_get_gapless_seqs_from_one(store: SharedStore) {
    let ada = user(&*store, "ada").await;
    let room = room(&*store, &ada, RoomKind::Public).await;
    let tasks = (0..100).map(|i| {
        let (store, msg) = (store.clone(), message(room.id, &ada, &format!("c{i}")));
        tokio::spawn(async move { store.append_accepted(&[msg]).await })
    });
    let mut got: Vec<i64> = join_all(tasks)
        .await
        .into_iter()
        .map(|joined| {
            let appended = joined.unwrap().unwrap();
            assert!(appended[0].is_new());
            appended[0].event().seq.0
        })
        .collect();
    got.sort_unstable();
    assert_eq!(got, (1..=100).collect::<Vec<_>>());
    assert_eq!(store.last_seq(room.id).await.unwrap(), Seq(100));
    let stored = store.range(room.id, Seq(0), None, 200).await.unwrap();
    assert_eq!(seqs(&stored), (1..=100).collect::<Vec<_>>());
}

async fn a_repeated_client_id_returns_the_original_and_takes_no_seq(store: SharedStore) {
    let (ada, bob) = (user(&*store, "ada").await, user(&*store, "bob").await);
    let room = room(&*store, &ada, RoomKind::Public).await;
    let Appended::New(original) = publish(&store, room.id, &ada, "x").await else {
        panic!("the first publish must be new");
    };
    assert_eq!(original.seq, Seq(1));
    assert_eq!(original.client_id, "x");

    let retry = event(
        room.id,
        &ada,
        "x",
        Action::Message {
            body: MessageBody::parse("a different body").unwrap(),
            reply_to: None,
        },
    );
    let again = store.append_accepted(&[retry]).await.unwrap();
    assert_eq!(again, vec![Appended::Duplicate(original.clone())]);

    let next = publish(&store, room.id, &ada, "y").await;
    assert_eq!(next.event().seq, Seq(2), "the duplicate took no seq");
    let other_author = publish(&store, room.id, &bob, "x").await;
    assert!(other_author.is_new(), "client ids are per author");
    assert_eq!(store.last_seq(room.id).await.unwrap(), Seq(3));
}

async fn a_client_id_repeated_within_one_batch_returns_the_first(store: SharedStore) {
    let ada = user(&*store, "ada").await;
    let room = room(&*store, &ada, RoomKind::Public).await;
    let batch = Vec::from(["a", "b", "a"].map(|c| message(room.id, &ada, c)));
    let appended = store.append_accepted(&batch).await.unwrap();
    assert_eq!(appended.len(), 3);
    let Appended::New(first) = &appended[0] else {
        panic!("the first of the batch must be new: {appended:?}");
    };
    assert!(appended[1].is_new());
    assert_eq!(appended[1].event().seq, Seq(2));
    assert_eq!(appended[2], Appended::Duplicate(first.clone()));
    assert_eq!(store.last_seq(room.id).await.unwrap(), Seq(2));
}

async fn appending_to_an_unknown_room_fails_and_stores_nothing_of_the_batch(store: SharedStore) {
    let ada = user(&*store, "ada").await;
    let room = room(&*store, &ada, RoomKind::Public).await;
    let batch = vec![
        message(room.id, &ada, "a"),
        message(RoomId::new(), &ada, "b"),
    ];
    // More failures than the pool has connections: a connection that went
    // back to the pool still holding the failed batch's lock on `room`
    // would make the publish below wait forever.
    for _ in 0..6 {
        let err = store.append_accepted(&batch).await.unwrap_err();
        assert!(matches!(err, LogError::RoomNotFound), "{err:?}");
    }
    assert_eq!(store.last_seq(room.id).await.unwrap(), Seq(0));
    let retried = publish(&store, room.id, &ada, "a").await;
    assert!(retried.is_new(), "the failed batch recorded no client id");
    assert_eq!(retried.event().seq, Seq(1));
}

async fn range_honours_after_before_and_limit(store: SharedStore) {
    let room = room_with_messages(&store, 10).await;
    let range = |after: i64, before: Option<i64>, limit: u32| {
        let store = store.clone();
        async move {
            let page = store.range(room, Seq(after), before.map(Seq), limit);
            seqs(&page.await.unwrap())
        }
    };
    assert_eq!(range(0, None, 100).await, (1..=10).collect::<Vec<_>>());
    assert_eq!(range(3, Some(7), 100).await, vec![4, 5, 6]);
    assert_eq!(range(3, None, 2).await, vec![4, 5]);
    assert_eq!(range(8, Some(100), 100).await, vec![9, 10]);
    assert_eq!(range(10, None, 100).await, Vec::<i64>::new());
    assert_eq!(range(0, Some(1), 100).await, Vec::<i64>::new());
    assert_eq!(range(5, Some(6), 100).await, Vec::<i64>::new());
    assert_eq!(range(6, Some(5), 100).await, Vec::<i64>::new());
    assert_eq!(range(0, None, 0).await, Vec::<i64>::new());
}

async fn tail_returns_the_newest_page_in_ascending_order(store: SharedStore) {
    let room = room_with_messages(&store, 10).await;
    let tail = |before: Option<i64>, limit: u32| {
        let store = store.clone();
        async move { seqs(&store.tail(room, before.map(Seq), limit).await.unwrap()) }
    };
    assert_eq!(tail(None, 3).await, vec![8, 9, 10]);
    assert_eq!(tail(Some(5), 3).await, vec![2, 3, 4]);
    assert_eq!(tail(Some(3), 10).await, vec![1, 2]);
    assert_eq!(tail(None, 100).await, (1..=10).collect::<Vec<_>>());
    assert_eq!(tail(Some(1), 10).await, Vec::<i64>::new());
    assert_eq!(tail(Some(50), 2).await, vec![9, 10]);
}

async fn an_empty_room_has_last_seq_zero_and_no_messages(store: SharedStore) {
    let room = room_with_messages(&store, 0).await;
    assert_eq!(store.last_seq(room).await.unwrap(), Seq(0));
    assert_eq!(store.range(room, Seq(0), None, 50).await.unwrap(), vec![]);
    assert_eq!(store.tail(room, None, 50).await.unwrap(), vec![]);
}

async fn an_unknown_room_has_no_messages_and_no_last_seq(store: SharedStore) {
    let unknown = RoomId::new();
    let last = store.last_seq(unknown).await;
    assert!(matches!(last, Err(LogError::RoomNotFound)), "{last:?}");
    assert_eq!(
        store.range(unknown, Seq(0), None, 50).await.unwrap(),
        vec![]
    );
    assert_eq!(store.tail(unknown, None, 50).await.unwrap(), vec![]);
}

// --- refresh tokens ----------------------------------------------------------

async fn a_refresh_token_is_spent_once_then_reported_reused(store: SharedStore) {
    let ada = user(&*store, "ada").await;
    let family = uuid::Uuid::now_v7();
    store
        .insert_refresh_token(token(&ada, family, b"t1", 60))
        .await
        .unwrap();
    let user = ada.id;
    let first = store.spend_refresh_token(b"t1", NO_GRACE).await.unwrap();
    assert_eq!(first, RefreshSpend::Spent { user, family });
    let second = store.spend_refresh_token(b"t1", NO_GRACE).await.unwrap();
    assert_eq!(second, RefreshSpend::Reused { user, family });
    let owner = store.refresh_token_owner(b"t1").await.unwrap();
    assert_eq!(
        owner,
        Some((user, family)),
        "a spent token still names its owner"
    );
}

async fn an_expired_refresh_token_is_expired_even_revoked_and_an_unknown_one_unknown(
    store: SharedStore,
) {
    let ada = user(&*store, "ada").await;
    let family = uuid::Uuid::now_v7();
    store
        .insert_refresh_token(token(&ada, family, b"old", -1))
        .await
        .unwrap();
    let expired = store.spend_refresh_token(b"old", NO_GRACE).await.unwrap();
    assert_eq!(expired, RefreshSpend::Expired);
    store.revoke_refresh_family(family).await.unwrap();
    let revoked = store.spend_refresh_token(b"old", NO_GRACE).await.unwrap();
    assert_eq!(
        revoked,
        RefreshSpend::Expired,
        "never spent, so not a replay"
    );
    let unknown = store
        .spend_refresh_token(b"never issued", NO_GRACE)
        .await
        .unwrap();
    assert_eq!(unknown, RefreshSpend::Unknown);
    assert_eq!(
        store.refresh_token_owner(b"never issued").await.unwrap(),
        None
    );
}

async fn a_refresh_token_spent_within_the_grace_window_is_spent_again_unless_revoked(
    store: SharedStore,
) {
    let ada = user(&*store, "ada").await;
    let family = uuid::Uuid::now_v7();
    for hash in [b"g1", b"g2"] {
        store
            .insert_refresh_token(token(&ada, family, hash, 60))
            .await
            .unwrap();
    }
    let (user, grace) = (ada.id, std::time::Duration::from_secs(60));
    let spent = RefreshSpend::Spent { user, family };
    let reused = RefreshSpend::Reused { user, family };

    assert_eq!(
        store.spend_refresh_token(b"g1", grace).await.unwrap(),
        spent
    );
    assert_eq!(
        store.spend_refresh_token(b"g1", grace).await.unwrap(),
        spent,
        "presented again within the window: its answer may have been lost"
    );
    assert_eq!(
        store.spend_refresh_token(b"g1", NO_GRACE).await.unwrap(),
        reused,
        "past the window it is a replay"
    );

    assert_eq!(
        store.spend_refresh_token(b"g2", grace).await.unwrap(),
        spent
    );
    store.revoke_refresh_family(family).await.unwrap();
    assert_eq!(
        store.spend_refresh_token(b"g2", grace).await.unwrap(),
        reused,
        "the window never revives a revoked family"
    );
}

async fn revoking_a_family_makes_its_unspent_tokens_reused(store: SharedStore) {
    let ada = user(&*store, "ada").await;
    let (family, other) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    store
        .insert_refresh_token(token(&ada, family, b"a1", 60))
        .await
        .unwrap();
    store
        .insert_refresh_token(token(&ada, family, b"a2", 60))
        .await
        .unwrap();
    store
        .insert_refresh_token(token(&ada, other, b"b1", 60))
        .await
        .unwrap();
    store.revoke_refresh_family(family).await.unwrap();

    let user = ada.id;
    let revoked = store.spend_refresh_token(b"a2", NO_GRACE).await.unwrap();
    assert_eq!(revoked, RefreshSpend::Reused { user, family });
    let untouched = store.spend_refresh_token(b"b1", NO_GRACE).await.unwrap();
    assert_eq!(
        untouched,
        RefreshSpend::Spent {
            user,
            family: other
        }
    );
}

// --- notifications -----------------------------------------------------------

async fn notifications_are_newest_first_and_page_with_before(store: SharedStore) {
    let (ada, bob) = (user(&*store, "ada").await, user(&*store, "bob").await);
    let mut expected = Vec::new();
    for n in 0..5 {
        expected.push(notify(&store, &ada, n).await);
        notify(&store, &bob, n).await;
    }
    expected.reverse();

    let first = store
        .notifications(ada.id, false, None, limit(2))
        .await
        .unwrap();
    assert_eq!(first, expected[..2]);
    let mut seen = first;
    while let Some(last) = seen.last().map(|n| n.id) {
        let page = store
            .notifications(ada.id, false, Some(last), limit(2))
            .await;
        let page = page.unwrap();
        if page.is_empty() {
            break;
        }
        seen.extend(page);
    }
    assert_eq!(seen, expected);
}

async fn the_unread_filter_and_count_see_only_unread_notifications(store: SharedStore) {
    let ada = user(&*store, "ada").await;
    let older = notify(&store, &ada, 0).await;
    let read = notify(&store, &ada, 1).await;
    let newer = notify(&store, &ada, 2).await;
    store.mark_read(ada.id, read.id).await.unwrap();
    store.mark_read(ada.id, read.id).await.unwrap();

    assert_eq!(store.unread_count(ada.id).await.unwrap(), 2);
    let unread = store
        .notifications(ada.id, true, None, limit(50))
        .await
        .unwrap();
    let ids: Vec<_> = unread.iter().map(|n| n.id).collect();
    assert_eq!(ids, vec![newer.id, older.id]);
    let all = store
        .notifications(ada.id, false, None, limit(50))
        .await
        .unwrap();
    let flags: Vec<_> = all.iter().map(|n| n.read).collect();
    assert_eq!(flags, vec![false, true, false]);
    let cursor = Some(newer.id);
    let below = store
        .notifications(ada.id, true, cursor, limit(50))
        .await
        .unwrap();
    assert_eq!(below, vec![older]);
}

async fn marking_another_users_notification_read_is_not_found(store: SharedStore) {
    let (ada, bob) = (user(&*store, "ada").await, user(&*store, "bob").await);
    let adas = notify(&store, &ada, 0).await;
    let err = store.mark_read(bob.id, adas.id).await;
    assert!(matches!(err, Err(StoreError::NotFound)), "{err:?}");
    let unknown = NotificationId::new();
    let err = store.mark_read(ada.id, unknown).await;
    assert!(matches!(err, Err(StoreError::NotFound)), "{err:?}");
    assert_eq!(store.unread_count(ada.id).await.unwrap(), 1);
}

async fn mark_all_read_returns_how_many_were_unread(store: SharedStore) {
    let (ada, bob) = (user(&*store, "ada").await, user(&*store, "bob").await);
    let first = notify(&store, &ada, 0).await;
    notify(&store, &ada, 1).await;
    notify(&store, &ada, 2).await;
    notify(&store, &bob, 0).await;
    store.mark_read(ada.id, first.id).await.unwrap();

    assert_eq!(store.mark_all_read(ada.id).await.unwrap(), 2);
    assert_eq!(store.unread_count(ada.id).await.unwrap(), 0);
    assert_eq!(store.mark_all_read(ada.id).await.unwrap(), 0);
    assert_eq!(
        store.unread_count(bob.id).await.unwrap(),
        1,
        "bob's stay unread"
    );
}

async fn a_notification_batch_reaches_every_known_user_once_and_skips_unknown_ones(
    store: SharedStore,
) {
    let mut fans = Vec::new();
    for i in 0..30 {
        fans.push(user(&*store, &format!("fan{i}")).await);
    }
    let mut recipients: Vec<UserId> = fans.iter().map(|u| u.id).collect();
    recipients.insert(7, UserId::new()); // never registered
    let payload = serde_json::json!({ "post_id": "p1" });
    let created = store
        .create_notifications(&recipients, "new_post", &payload)
        .await
        .unwrap();
    assert_eq!(created.len(), 30);
    for fan in &fans {
        let inbox = store
            .notifications(fan.id, false, None, limit(10))
            .await
            .unwrap();
        assert_eq!(inbox.len(), 1, "{} got {inbox:?}", fan.username);
        assert_eq!(
            (inbox[0].kind.as_str(), &inbox[0].payload),
            ("new_post", &payload)
        );
        assert!(!inbox[0].read);
    }
    assert!(
        store
            .create_notifications(&[], "new_post", &payload)
            .await
            .unwrap()
            .is_empty()
    );
}

// --- room events and read state (contract 1.1) ------------------------------

fn body(text: &str) -> MessageBody {
    MessageBody::parse(text).unwrap()
}

fn say(text: &str, reply_to: Option<i64>) -> Action {
    Action::Message {
        body: body(text),
        reply_to: reply_to.map(Seq),
    }
}

fn react(target: i64, emoji: &str, on: bool) -> Action {
    Action::React {
        target: Seq(target),
        emoji: Emoji::parse(emoji).unwrap(),
        on,
    }
}

/// Appends one event; the refusal when the rules refuse it.
async fn apply(
    store: &SharedStore,
    room: RoomId,
    author: &User,
    client_id: &str,
    action: Action,
) -> Result<Appended, Refusal> {
    let mut appended = store
        .append(&[event(room, author, client_id, action)])
        .await
        .unwrap();
    appended.remove(0)
}

async fn history_of(store: &SharedStore, room: RoomId, viewer: &User) -> Vec<HistoryItem> {
    let query = HistoryQuery {
        after: None,
        before: None,
        reply_to: None,
        limit: 100,
    };
    store.history(room, viewer.id, query).await.unwrap()
}

async fn edits_and_reactions_fold_into_history_within_and_across_batches(store: SharedStore) {
    let (ada, bob) = (user(&*store, "ada").await, user(&*store, "bob").await);
    let room = room(&*store, &ada, RoomKind::Public).await.id;
    apply(&store, room, &ada, "m1", say("hello", None))
        .await
        .unwrap();
    // One batch: a reply, an edit, reactions set twice, set and cleared, and
    // a message edited and reacted to in the very batch that stores it.
    let batch = [
        event(room, &bob, "m2", say("hi ada", Some(1))),
        event(
            room,
            &ada,
            "e1",
            Action::Edit {
                target: Seq(1),
                body: body("hello, world"),
            },
        ),
        event(room, &bob, "r1", react(1, "👍", true)),
        event(room, &ada, "r2", react(1, "👍", true)),
        event(room, &bob, "r3", react(1, "👍", true)),
        event(room, &bob, "r4", react(1, "❤️", true)),
        event(room, &bob, "r5", react(1, "❤️", false)),
        event(room, &bob, "m9", say("typo", None)),
        event(
            room,
            &bob,
            "e9",
            Action::Edit {
                target: Seq(9),
                body: body("fixed"),
            },
        ),
        event(room, &ada, "r9", react(9, "🎉", true)),
    ];
    let appended = store.append_accepted(&batch).await.unwrap();
    let seqs: Vec<i64> = appended.iter().map(|a| a.event().seq.0).collect();
    assert_eq!(
        seqs,
        (2..=11).collect::<Vec<_>>(),
        "every kind takes the next seq"
    );
    // Across batches: bob takes his thumbs-up back.
    apply(&store, room, &bob, "r6", react(1, "👍", false))
        .await
        .unwrap();

    let seen_by_bob = history_of(&store, room, &bob).await;
    let listed: Vec<i64> = seen_by_bob.iter().map(|m| m.seq.0).collect();
    assert_eq!(listed, [1, 2, 9], "history lists messages only");
    let first = &seen_by_bob[0];
    assert_eq!(first.body, "hello, world");
    assert!(first.edited_at.is_some() && !first.deleted);
    assert_eq!(
        first.reactions,
        [ReactionCount {
            emoji: "👍".into(),
            count: 1,
            me: false
        }]
    );
    assert_eq!(seen_by_bob[1].reply_to, Some(Seq(1)));
    assert_eq!(seen_by_bob[1].edited_at, None);
    assert_eq!(seen_by_bob[2].body, "fixed");
    assert_eq!(seen_by_bob[2].reactions[0].count, 1);
    let seen_by_ada = history_of(&store, room, &ada).await;
    assert!(
        seen_by_ada[0].reactions[0].me,
        "ada still holds her thumbs-up"
    );

    // Replay carries every kind, in seq order.
    let replay = store.range(room, Seq(0), None, 100).await.unwrap();
    let kinds: Vec<&str> = replay.iter().map(|e| e.data.kind()).collect();
    assert_eq!(
        kinds,
        [
            "message", "message", "edit", "reaction", "reaction", "reaction", "reaction",
            "reaction", "message", "edit", "reaction", "reaction"
        ]
    );
    // Each reaction says how many hold its emoji once it applied: a repeated
    // `on` does not count twice, whoever missed the first.
    let counts: Vec<i64> = replay
        .iter()
        .filter_map(|e| match e.data {
            EventData::Reaction { count, .. } => Some(count),
            _ => None,
        })
        .collect();
    assert_eq!(counts, [1, 2, 2, 1, 0, 1, 1]);
    assert_eq!(store.last_seq(room).await.unwrap(), Seq(12));
}

async fn the_rules_refuse_an_event_without_taking_a_seq(store: SharedStore) {
    let (ada, bob) = (user(&*store, "ada").await, user(&*store, "bob").await);
    let room = room(&*store, &ada, RoomKind::Public).await.id;
    apply(&store, room, &ada, "m1", say("mine", None))
        .await
        .unwrap();
    apply(&store, room, &bob, "r1", react(1, "👍", true))
        .await
        .unwrap();
    let edit = |target| Action::Edit {
        target: Seq(target),
        body: body("new"),
    };

    assert_eq!(
        apply(&store, room, &bob, "x1", edit(1)).await,
        Err(Refusal::NotAuthor)
    );
    let delete = Action::Delete { target: Seq(1) };
    assert_eq!(
        apply(&store, room, &bob, "x2", delete.clone()).await,
        Err(Refusal::NotAuthor),
        "a plain member deletes only their own"
    );
    assert_eq!(
        apply(&store, room, &ada, "x3", edit(99)).await,
        Err(Refusal::NoSuchMessage)
    );
    assert_eq!(
        apply(&store, room, &ada, "x4", edit(2)).await,
        Err(Refusal::NoSuchMessage),
        "seq 2 is a reaction, not a message"
    );
    assert_eq!(
        apply(&store, room, &ada, "x5", say("re", Some(42))).await,
        Err(Refusal::NoSuchMessage)
    );
    assert_eq!(
        store.last_seq(room).await.unwrap(),
        Seq(2),
        "refusals take no seq"
    );

    // A moderator deletes someone else's message.
    let mut moderated = event(room, &bob, "d1", delete);
    moderated.moderator = true;
    let deleted = store.append(&[moderated]).await.unwrap();
    assert!(deleted[0].as_ref().unwrap().is_new());
    assert_eq!(
        apply(&store, room, &ada, "x6", edit(1)).await,
        Err(Refusal::Deleted)
    );
    assert_eq!(
        apply(&store, room, &bob, "x7", react(1, "👍", false)).await,
        Err(Refusal::Deleted)
    );
    assert!(
        apply(&store, room, &bob, "m2", say("what was that?", Some(1)))
            .await
            .is_ok(),
        "a reply may quote a deleted message"
    );
    // A refused key was not spent: the same key may carry a valid event.
    assert!(
        apply(&store, room, &ada, "x1", say("ok", None))
            .await
            .is_ok()
    );
    assert_eq!(store.last_seq(room).await.unwrap(), Seq(5));
}

async fn a_delete_erases_the_body_its_edits_and_its_reactions(store: SharedStore) {
    let (ada, bob) = (user(&*store, "ada").await, user(&*store, "bob").await);
    let room = room(&*store, &ada, RoomKind::Public).await.id;
    apply(&store, room, &ada, "m1", say("secret one", None))
        .await
        .unwrap();
    let edit = Action::Edit {
        target: Seq(1),
        body: body("secret two"),
    };
    apply(&store, room, &ada, "e1", edit).await.unwrap();
    apply(&store, room, &bob, "r1", react(1, "👍", true))
        .await
        .unwrap();
    apply(&store, room, &ada, "d1", Action::Delete { target: Seq(1) })
        .await
        .unwrap();

    let item = &history_of(&store, room, &bob).await[0];
    assert!(item.deleted);
    assert_eq!(item.body, "");
    assert!(item.reactions.is_empty());
    let replay = store.range(room, Seq(0), None, 10).await.unwrap();
    assert_eq!(replay.len(), 4, "the tombstone keeps every seq");
    for event in &replay {
        assert!(!event.body().contains("secret"), "{event:?}");
    }
}

async fn a_thread_lists_the_replies_to_one_message(store: SharedStore) {
    let ada = user(&*store, "ada").await;
    let room = room(&*store, &ada, RoomKind::Public).await.id;
    apply(&store, room, &ada, "m1", say("topic", None))
        .await
        .unwrap();
    apply(&store, room, &ada, "m2", say("other", None))
        .await
        .unwrap();
    for (i, to) in [1, 2, 1, 1].into_iter().enumerate() {
        apply(&store, room, &ada, &format!("r{i}"), say("re", Some(to)))
            .await
            .unwrap();
    }
    let thread = |after, limit| HistoryQuery {
        after,
        before: None,
        reply_to: Some(Seq(1)),
        limit,
    };
    let replies = store.history(room, ada.id, thread(None, 10)).await.unwrap();
    let seqs: Vec<i64> = replies.iter().map(|m| m.seq.0).collect();
    assert_eq!(seqs, [3, 5, 6]);
    let page = store
        .history(room, ada.id, thread(Some(Seq(3)), 1))
        .await
        .unwrap();
    assert_eq!(page.iter().map(|m| m.seq.0).collect::<Vec<_>>(), [5]);
}

async fn read_cursors_only_move_forward_and_own_messages_move_them(store: SharedStore) {
    let (ada, bob) = (user(&*store, "ada").await, user(&*store, "bob").await);
    let room = room(&*store, &ada, RoomKind::Private).await.id;
    for i in 0..3 {
        apply(&store, room, &ada, &format!("a{i}"), say("hi", None))
            .await
            .unwrap();
    }
    let read = |seq: i64| store.mark_room_read(room, bob.id, Seq(seq));
    let moved = |seq: i64, moved: bool| CursorMove {
        seq: Seq(seq),
        moved,
    };
    assert_eq!(read(2).await.unwrap(), moved(2, true));
    assert_eq!(read(1).await.unwrap(), moved(2, false), "never back");
    assert_eq!(read(2).await.unwrap(), moved(2, false), "no move");
    assert_eq!(read(99).await.unwrap(), moved(3, true), "clamped");
    apply(&store, room, &bob, "b1", say("me too", None))
        .await
        .unwrap();
    let cursors = store.read_cursors(room).await.unwrap();
    let bobs = cursors.iter().find(|c| c.user == bob.id).unwrap();
    assert_eq!(bobs.seq, Seq(4), "bob's own message moved his cursor");
    let adas = cursors.iter().find(|c| c.user == ada.id).unwrap();
    assert_eq!(adas.seq, Seq(3));
    assert!(matches!(
        store.mark_room_read(RoomId::new(), bob.id, Seq(1)).await,
        Err(StoreError::NotFound)
    ));
}

async fn unread_counts_live_messages_by_others_after_the_cursor(store: SharedStore) {
    let (ada, bob) = (user(&*store, "ada").await, user(&*store, "bob").await);
    let busy = room(&*store, &ada, RoomKind::Private).await.id;
    store
        .add_member(busy, bob.id, RoomRole::Member)
        .await
        .unwrap();
    let quiet = room(&*store, &bob, RoomKind::Private).await.id;
    store
        .add_member(quiet, ada.id, RoomRole::Member)
        .await
        .unwrap();
    let stranger = room(&*store, &bob, RoomKind::Public).await.id;
    for i in 0..5 {
        apply(&store, busy, &bob, &format!("b{i}"), say("news", None))
            .await
            .unwrap();
    }
    apply(&store, busy, &bob, "r", react(1, "👍", true))
        .await
        .unwrap();
    apply(&store, stranger, &bob, "s", say("anyone?", None))
        .await
        .unwrap();
    let positions = store.room_unread(ada.id, &[quiet, busy]).await.unwrap();
    assert_eq!(positions.len(), 2);
    assert_eq!(positions[0].room, quiet, "in the order asked");
    assert_eq!(
        positions[1],
        RoomUnread {
            room: busy,
            last_seq: Seq(6),
            read_seq: Seq(0),
            unread: 5
        }
    );

    store.mark_room_read(busy, ada.id, Seq(2)).await.unwrap();
    apply(&store, busy, &bob, "d", Action::Delete { target: Seq(4) })
        .await
        .unwrap();
    apply(&store, busy, &ada, "a", say("mine", None))
        .await
        .unwrap();
    apply(&store, busy, &bob, "b9", say("again", None))
        .await
        .unwrap();
    // After ada's own message (seq 8) only bob's seq 9 is unread.
    let unread = store.unread_rooms(ada.id).await.unwrap();
    assert_eq!(
        unread,
        [RoomUnread {
            room: busy,
            last_seq: Seq(9),
            read_seq: Seq(8),
            unread: 1
        }],
        "quiet has nothing unread; a public room ada never joined or read is not hers"
    );
    store.mark_room_read(busy, ada.id, Seq(9)).await.unwrap();
    assert!(store.unread_rooms(ada.id).await.unwrap().is_empty());
    // Reading a public room makes it one of hers.
    store
        .mark_room_read(stranger, ada.id, Seq(0))
        .await
        .unwrap();
    let unread = store.unread_rooms(ada.id).await.unwrap();
    assert_eq!(unread.len(), 1);
    assert_eq!((unread[0].room, unread[0].unread), (stranger, 1));
}

async fn a_deleted_messages_notifications_are_withdrawn(store: SharedStore) {
    let ada = user(&*store, "ada").await;
    let room = RoomId::new();
    let about = |seq: i64| NewNotification {
        user: ada.id,
        kind: "mention".into(),
        payload: serde_json::json!({ "room": room, "seq": seq }),
    };
    store.create_notification(about(1)).await.unwrap();
    store.create_notification(about(2)).await.unwrap();
    assert_eq!(store.withdraw_notifications(room, Seq(1)).await.unwrap(), 1);
    assert_eq!(store.unread_count(ada.id).await.unwrap(), 1);
    assert_eq!(store.withdraw_notifications(room, Seq(1)).await.unwrap(), 0);
}

// --- people (contract 1.1, 6.2) ----------------------------------------------

async fn user_search_matches_a_prefix_of_username_or_display_name_ignoring_case(
    store: SharedStore,
) {
    for name in ["Adam", "ada", "adele", "bob", "Zed"] {
        user(&*store, name).await;
    }
    let zed = store.user_by_username("zed").await.unwrap().unwrap();
    let patch = ProfilePatch {
        display_name: Some(DisplayName::parse("Adrian Zed").unwrap()),
        bio: None,
    };
    store.update_profile(zed.id, patch).await.unwrap();
    let search = |q: &str, after: Option<&'static str>, n: i64| {
        let store = store.clone();
        let prefix = SearchPrefix::parse(q).unwrap();
        async move {
            let found = store.search_users(&prefix, after, limit(n)).await.unwrap();
            found.into_iter().map(|u| u.username).collect::<Vec<_>>()
        }
    };
    assert_eq!(
        search("AD", None, 10).await,
        ["ada", "Adam", "adele", "Zed"]
    );
    assert_eq!(search("ada", None, 10).await, ["ada", "Adam"]);
    // Paged by lower-cased username.
    assert_eq!(search("ad", None, 2).await, ["ada", "Adam"]);
    assert_eq!(search("ad", Some("adam"), 2).await, ["adele", "Zed"]);
    assert_eq!(search("adrian z", None, 10).await, ["Zed"]);
    assert!(search("xy", None, 10).await.is_empty());
}

// --- people and safety (contract 1.1, 6.2) -----------------------------------

conformance!(
    a_ban_ends_membership_and_shows_in_access_until_lifted_or_expired,
    a_mute_keeps_membership_and_lists_with_bans_apart,
    a_block_ends_follows_both_ways_and_silences_a_direct_room,
    reports_are_stored_and_listed_newest_first,
);

fn restriction(
    room: RoomId,
    user: &User,
    by: &User,
    kind: RestrictionKind,
    until: Option<Until>,
) -> NewRestriction {
    NewRestriction {
        room,
        user: user.id,
        kind,
        reason: Reason::parse("spam").unwrap(),
        until,
        by: by.id,
    }
}

/// An instant that has already passed, as a `Until` (valid when it was
/// set, an hour before it).
fn expired() -> Until {
    let now = chrono::Utc::now();
    Until::parse(
        now - chrono::Duration::minutes(1),
        now - chrono::Duration::hours(1),
    )
    .unwrap()
}

async fn a_ban_ends_membership_and_shows_in_access_until_lifted_or_expired(store: SharedStore) {
    let (ada, bob) = (user(&*store, "ada").await, user(&*store, "bob").await);
    let lobby = room(&*store, &ada, RoomKind::Public).await;
    store
        .add_member(lobby.id, bob.id, RoomRole::Member)
        .await
        .unwrap();
    let ban = restriction(lobby.id, &bob, &ada, RestrictionKind::Ban, None);
    let imposed = store.restrict(ban.clone()).await.unwrap();
    assert!(imposed.ended_membership, "bob was a member");
    let again = store.restrict(ban.clone()).await.unwrap();
    assert!(!again.ended_membership, "a second ban removes nobody");
    let stored = again.restriction;
    assert_eq!(
        (stored.user, stored.kind, stored.until),
        (bob.id, RestrictionKind::Ban, None)
    );
    assert_eq!(
        (stored.reason.as_str(), stored.created_by),
        ("spam", ada.id)
    );

    let access = store.room_access(lobby.id, bob.id).await.unwrap().unwrap();
    assert_eq!(access.role, None, "a ban removes the member");
    assert_eq!(access.banned, Some(stored));
    assert!(
        store
            .members(lobby.id)
            .await
            .unwrap()
            .iter()
            .all(|m| m.user != bob.id)
    );

    store
        .lift_restriction(lobby.id, bob.id, RestrictionKind::Ban)
        .await
        .unwrap();
    let access = store.room_access(lobby.id, bob.id).await.unwrap().unwrap();
    assert_eq!(access.banned, None);
    let again = store
        .lift_restriction(lobby.id, bob.id, RestrictionKind::Ban)
        .await;
    assert!(matches!(again, Err(StoreError::NotFound)), "{again:?}");

    // An expired ban neither shows nor lifts.
    let lapsed = restriction(lobby.id, &bob, &ada, RestrictionKind::Ban, Some(expired()));
    store.restrict(lapsed).await.unwrap();
    let access = store.room_access(lobby.id, bob.id).await.unwrap().unwrap();
    assert_eq!(access.banned, None);
    let lift = store
        .lift_restriction(lobby.id, bob.id, RestrictionKind::Ban)
        .await;
    assert!(matches!(lift, Err(StoreError::NotFound)), "{lift:?}");

    let unknown = restriction(RoomId::new(), &bob, &ada, RestrictionKind::Ban, None);
    assert!(matches!(
        store.restrict(unknown).await,
        Err(StoreError::NotFound)
    ));
}

async fn a_mute_keeps_membership_and_lists_with_bans_apart(store: SharedStore) {
    let ada = user(&*store, "ada").await;
    let lobby = room(&*store, &ada, RoomKind::Public).await;
    let mut users = Vec::new();
    for name in ["bob", "cat", "dan", "eve"] {
        let u = user(&*store, name).await;
        store
            .add_member(lobby.id, u.id, RoomRole::Member)
            .await
            .unwrap();
        users.push(u);
    }
    let (bob, cat, dan, eve) = (&users[0], &users[1], &users[2], &users[3]);
    for muted in [bob, cat, dan] {
        let mute = restriction(lobby.id, muted, &ada, RestrictionKind::Mute, None);
        let imposed = store.restrict(mute).await.unwrap();
        assert!(!imposed.ended_membership, "a mute keeps the member");
    }
    store
        .restrict(restriction(
            lobby.id,
            eve,
            &ada,
            RestrictionKind::Mute,
            Some(expired()),
        ))
        .await
        .unwrap();
    store
        .restrict(restriction(lobby.id, eve, &ada, RestrictionKind::Ban, None))
        .await
        .unwrap();

    let access = store.room_access(lobby.id, bob.id).await.unwrap().unwrap();
    assert_eq!(
        access.role,
        Some(RoomRole::Member),
        "a mute keeps the member"
    );
    assert!(access.muted.is_some() && access.banned.is_none());

    // Mutes in force, by user id, paged; the expired one and the ban apart.
    let mut expected = vec![bob.id, cat.id, dan.id];
    expected.sort();
    let first = store
        .restrictions(lobby.id, RestrictionKind::Mute, None, limit(2))
        .await
        .unwrap();
    let rest = store
        .restrictions(
            lobby.id,
            RestrictionKind::Mute,
            Some(first[1].user),
            limit(2),
        )
        .await
        .unwrap();
    let listed: Vec<UserId> = first.iter().chain(&rest).map(|r| r.user).collect();
    assert_eq!(listed, expected);
    let bans = store
        .restrictions(lobby.id, RestrictionKind::Ban, None, limit(10))
        .await
        .unwrap();
    assert_eq!(
        bans.iter().map(|r| r.user).collect::<Vec<_>>(),
        vec![eve.id]
    );
}

async fn a_block_ends_follows_both_ways_and_silences_a_direct_room(store: SharedStore) {
    let (ada, bob, cat) = (
        user(&*store, "ada").await,
        user(&*store, "bob").await,
        user(&*store, "cat").await,
    );
    store.follow(ada.id, bob.id).await.unwrap();
    store.follow(bob.id, ada.id).await.unwrap();
    store.follow(cat.id, ada.id).await.unwrap();
    let dm = room(&*store, &ada, RoomKind::Direct).await;
    store
        .add_member(dm.id, bob.id, RoomRole::Member)
        .await
        .unwrap();

    assert!(store.block(ada.id, bob.id).await.unwrap(), "a new block");
    assert!(!store.block(ada.id, bob.id).await.unwrap(), "idempotent");
    assert_eq!(store.followers(ada.id).await.unwrap(), vec![cat.id]);
    assert!(store.followers(bob.id).await.unwrap().is_empty());

    let among = store
        .blockers_among(bob.id, &[ada.id, cat.id])
        .await
        .unwrap();
    assert_eq!(among, vec![ada.id]);
    assert!(
        store
            .blockers_among(ada.id, &[bob.id])
            .await
            .unwrap()
            .is_empty()
    );

    let bob_in_dm = store.room_access(dm.id, bob.id).await.unwrap().unwrap();
    assert!(
        bob_in_dm.blocked_by_peer,
        "ada blocked bob: he may not write to her"
    );
    let ada_in_dm = store.room_access(dm.id, ada.id).await.unwrap().unwrap();
    assert!(!ada_in_dm.blocked_by_peer);

    store.block(ada.id, cat.id).await.unwrap();
    let blocks = store.blocks(ada.id, None, limit(1)).await.unwrap();
    let rest = store
        .blocks(ada.id, Some(blocks[0].user.id), limit(5))
        .await
        .unwrap();
    let mut listed: Vec<UserId> = blocks.iter().chain(&rest).map(|b| b.user.id).collect();
    let mut expected = vec![bob.id, cat.id];
    expected.sort();
    assert_eq!(listed, expected, "by user id, paged");
    listed.clear();

    store.unblock(ada.id, bob.id).await.unwrap();
    store.unblock(ada.id, bob.id).await.unwrap();
    let bob_in_dm = store.room_access(dm.id, bob.id).await.unwrap().unwrap();
    assert!(!bob_in_dm.blocked_by_peer);
    assert!(matches!(
        store.block(ada.id, UserId::new()).await,
        Err(StoreError::NotFound)
    ));
}

async fn reports_are_stored_and_listed_newest_first(store: SharedStore) {
    let (ada, bob) = (user(&*store, "ada").await, user(&*store, "bob").await);
    let lobby = room(&*store, &ada, RoomKind::Public).await;
    let about_message = NewReport {
        reporter: bob.id,
        kind: ReportKind::Message,
        message: Some((lobby.id, Seq(1))),
        user: None,
        reason: Reason::parse_required("spam").unwrap(),
    };
    let first = store.create_report(about_message).await.unwrap();
    assert_eq!(
        (first.kind, first.message, first.reporter),
        (ReportKind::Message, Some((lobby.id, Seq(1))), bob.id)
    );
    let about_user = NewReport {
        reporter: bob.id,
        kind: ReportKind::User,
        message: None,
        user: Some(ada.id),
        reason: Reason::parse_required("rude").unwrap(),
    };
    let second = store.create_report(about_user.clone()).await.unwrap();
    assert_eq!(
        (second.user, second.reason.as_str()),
        (Some(ada.id), "rude")
    );

    let page = store.reports(None, limit(1)).await.unwrap();
    assert_eq!(page, vec![second.clone()]);
    let older = store.reports(Some(second.id), limit(5)).await.unwrap();
    assert_eq!(older, vec![first]);

    let unknown = NewReport {
        user: Some(UserId::new()),
        ..about_user
    };
    assert!(matches!(
        store.create_report(unknown).await,
        Err(StoreError::NotFound)
    ));
}

// --- session revocations -----------------------------------------------------

/// A revocation at a whole millisecond, so it reads back equal from a
/// store that keeps microseconds.
fn revocation(user: &User, family: Option<uuid::Uuid>) -> Revocation {
    let now = chrono::Utc::now().timestamp_millis();
    Revocation {
        user: user.id,
        family,
        at: chrono::DateTime::from_timestamp_millis(now).unwrap(),
    }
}

async fn logging_out_everywhere_revokes_every_family_of_the_user_only(store: SharedStore) {
    let (ada, bob) = (user(&*store, "ada").await, user(&*store, "bob").await);
    let (first, second, bobs) = (
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7(),
    );
    for (who, family, hash) in [
        (&ada, first, b"a1"),
        (&ada, second, b"a2"),
        (&bob, bobs, b"b1"),
    ] {
        store
            .insert_refresh_token(token(who, family, hash, 60))
            .await
            .unwrap();
    }
    let before = chrono::Utc::now() - chrono::Duration::minutes(1);
    let everywhere = revocation(&ada, None);
    store.revoke_sessions(&everywhere).await.unwrap();

    for (hash, family) in [(b"a1", first), (b"a2", second)] {
        let spent = store.spend_refresh_token(hash, NO_GRACE).await.unwrap();
        let user = ada.id;
        assert_eq!(spent, RefreshSpend::Reused { user, family });
    }
    let (user, family) = (bob.id, bobs);
    let bobs = store.spend_refresh_token(b"b1", NO_GRACE).await.unwrap();
    assert_eq!(bobs, RefreshSpend::Spent { user, family });

    let recorded = store.revocations_since(before, 10).await.unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].revocation, everywhere);
    let later = store
        .revocations_since(recorded[0].recorded_at, 10)
        .await
        .unwrap();
    assert_eq!(later, vec![], "only what was recorded after the cursor");
}

async fn revoking_one_family_leaves_the_others_and_is_polled_in_record_order(store: SharedStore) {
    let ada = user(&*store, "ada").await;
    let (reused, other) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    store
        .insert_refresh_token(token(&ada, reused, b"r1", 60))
        .await
        .unwrap();
    store
        .insert_refresh_token(token(&ada, other, b"o1", 60))
        .await
        .unwrap();
    let before = chrono::Utc::now() - chrono::Duration::minutes(1);
    let revocations = [
        revocation(&ada, Some(reused)),
        revocation(&ada, None),
        revocation(&ada, Some(other)),
    ];
    store.revoke_sessions(&revocations[0]).await.unwrap();
    let user = ada.id;
    let spent = store.spend_refresh_token(b"r1", NO_GRACE).await.unwrap();
    assert_eq!(
        spent,
        RefreshSpend::Reused {
            user,
            family: reused
        }
    );
    let spent = store.spend_refresh_token(b"o1", NO_GRACE).await.unwrap();
    assert_eq!(
        spent,
        RefreshSpend::Spent {
            user,
            family: other
        }
    );
    for later in &revocations[1..] {
        store.revoke_sessions(later).await.unwrap();
    }

    let first_two = store.revocations_since(before, 2).await.unwrap();
    let read: Vec<_> = first_two.iter().map(|r| r.revocation.clone()).collect();
    assert_eq!(read, revocations[..2]);
    let rest = store
        .revocations_since(first_two[1].recorded_at, 10)
        .await
        .unwrap();
    let read: Vec<_> = rest.iter().map(|r| r.revocation.clone()).collect();
    assert_eq!(read, revocations[2..]);

    let stranger = Revocation {
        user: UserId::new(),
        ..revocations[1].clone()
    };
    assert!(matches!(
        store.revoke_sessions(&stranger).await,
        Err(StoreError::NotFound)
    ));
}

// --- retention: the horizon and the purge --------------------------------

use parley::domain::RetentionDays;

conformance!(
    a_purge_hides_then_deletes_the_expired_events_and_keeps_the_rest,
    the_horizon_never_moves_back_and_seqs_continue_after_a_full_purge,
    a_purge_pass_visits_only_rooms_with_a_retention,
);

/// `n` messages by `author`, each in its own batch (so each has its own
/// timestamp), and their timestamps by seq.
async fn messages_one_by_one(
    store: &SharedStore,
    room: RoomId,
    author: &User,
    n: usize,
) -> Vec<chrono::DateTime<chrono::Utc>> {
    let mut stamps = Vec::new();
    for i in 1..=n {
        let appended = store
            .append_accepted(&[message(room, author, &format!("r{i}"))])
            .await
            .unwrap();
        stamps.push(appended[0].event().ts);
    }
    stamps
}

async fn a_purge_hides_then_deletes_the_expired_events_and_keeps_the_rest(store: SharedStore) {
    let (ada, bob) = (user(&*store, "ada").await, user(&*store, "bob").await);
    let room = room(&*store, &ada, RoomKind::Public).await.id;
    let stamps = messages_one_by_one(&store, room, &ada, 5).await;
    store
        .append_accepted(&[event(room, &bob, "like", react(2, "👍", true))])
        .await
        .unwrap();
    assert!(stamps[2] < stamps[3], "each batch has its own timestamp");

    // Messages 1 to 3 are older than the cutoff; the reaction (seq 6) is not.
    let horizon = store.advance_horizon(room, stamps[3]).await.unwrap();
    assert_eq!(horizon, Seq(4));
    // Hidden at once, before anything is deleted.
    let page = store.replay_page(room, Seq(0), None, 100).await.unwrap();
    assert_eq!(
        (page.first_seq, seqs(&page.events)),
        (Seq(4), vec![4, 5, 6])
    );
    assert_eq!(
        seqs(&store.range(room, Seq(1), None, 100).await.unwrap()),
        [4, 5, 6]
    );
    assert_eq!(seqs(&store.tail(room, None, 100).await.unwrap()), [4, 5, 6]);
    let history: Vec<i64> = history_of(&store, room, &bob)
        .await
        .iter()
        .map(|m| m.seq.0)
        .collect();
    assert_eq!(history, [4, 5]);
    let unread = store.room_unread(bob.id, &[room]).await.unwrap();
    assert_eq!(unread[0].unread, 2, "purged messages are not unread");
    // A purged message cannot be edited, deleted or reacted to.
    let refused = apply(&store, room, &bob, "late", react(2, "🎉", true)).await;
    assert_eq!(refused.err(), Some(Refusal::NoSuchMessage));
    let refused = apply(
        &store,
        room,
        &ada,
        "edit",
        Action::Edit {
            target: Seq(1),
            body: MessageBody::parse("too late").unwrap(),
        },
    )
    .await;
    assert_eq!(refused.err(), Some(Refusal::NoSuchMessage));

    // Then deleted, a batch at a time, oldest first.
    assert_eq!(store.purge_below_horizon(room, 2).await.unwrap(), 2);
    assert_eq!(store.purge_below_horizon(room, 2).await.unwrap(), 1);
    assert_eq!(store.purge_below_horizon(room, 2).await.unwrap(), 0);
    let page = store.replay_page(room, Seq(0), None, 100).await.unwrap();
    assert_eq!(
        (page.first_seq, seqs(&page.events)),
        (Seq(4), vec![4, 5, 6])
    );
    assert_eq!(
        store.last_seq(room).await.unwrap(),
        Seq(6),
        "refusals took no seq"
    );
}

async fn the_horizon_never_moves_back_and_seqs_continue_after_a_full_purge(store: SharedStore) {
    let ada = user(&*store, "ada").await;
    let room = room(&*store, &ada, RoomKind::Public).await.id;
    let stamps = messages_one_by_one(&store, room, &ada, 3).await;
    assert_eq!(
        store.advance_horizon(room, stamps[1]).await.unwrap(),
        Seq(2)
    );
    let long_ago = stamps[0] - chrono::Duration::days(30);
    assert_eq!(store.advance_horizon(room, long_ago).await.unwrap(), Seq(2));

    // Everything expired: the horizon is past the last seq, nothing is left.
    let later = stamps[2] + chrono::Duration::days(1);
    assert_eq!(store.advance_horizon(room, later).await.unwrap(), Seq(4));
    assert_eq!(store.purge_below_horizon(room, 100).await.unwrap(), 3);
    let page = store.replay_page(room, Seq(0), None, 100).await.unwrap();
    assert_eq!((page.first_seq, page.events.len()), (Seq(4), 0));
    assert_eq!(store.last_seq(room).await.unwrap(), Seq(3));
    let next = store
        .append_accepted(&[message(room, &ada, "after")])
        .await
        .unwrap();
    assert_eq!(next[0].event().seq, Seq(4));
    let page = store.replay_page(room, Seq(1), None, 100).await.unwrap();
    assert_eq!(seqs(&page.events), [4]);
}

async fn a_purge_pass_visits_only_rooms_with_a_retention(store: SharedStore) {
    let ada = user(&*store, "ada").await;
    let kept = room(&*store, &ada, RoomKind::Public).await.id;
    let purged = room(&*store, &ada, RoomKind::Private).await.id;
    messages_one_by_one(&store, kept, &ada, 3).await;
    messages_one_by_one(&store, purged, &ada, 3).await;
    let days = RetentionDays::parse(7).unwrap();
    let set = store.set_retention(purged, Some(days)).await.unwrap();
    assert_eq!(set.retention_days, Some(days));
    assert_eq!(
        store.room(purged).await.unwrap().unwrap().retention_days,
        Some(days)
    );
    let listed = store.rooms_with_retention(None, 10).await.unwrap();
    assert_eq!(listed, vec![(purged, days)]);

    let in_a_week = chrono::Utc::now() + chrono::Duration::days(8);
    let pace = parley::service::retention::Pace {
        batch: 2,
        pause: std::time::Duration::ZERO,
    };
    let report = parley::service::retention::purge_pass(&*store, in_a_week, pace)
        .await
        .unwrap();
    assert_eq!((report.rooms, report.events), (1, 3));
    assert_eq!(store.range(purged, Seq(0), None, 10).await.unwrap(), vec![]);
    assert_eq!(
        seqs(&store.range(kept, Seq(0), None, 10).await.unwrap()),
        [1, 2, 3]
    );

    assert!(
        store
            .set_retention(purged, None)
            .await
            .unwrap()
            .retention_days
            .is_none()
    );
    assert_eq!(store.rooms_with_retention(None, 10).await.unwrap(), vec![]);
    let unknown = store.set_retention(RoomId::new(), Some(days)).await;
    assert!(matches!(unknown, Err(StoreError::NotFound)));
}

// --- webhooks and API keys (contract 6.3) --------------------------------------

conformance!(
    a_room_event_enters_the_outbox_of_the_endpoints_that_want_it_in_its_append,
    a_claimed_delivery_waits_out_its_lease_and_a_failure_is_retried_as_the_same_event,
    an_endpoint_failing_enough_is_disabled_queues_nothing_and_resumes_when_enabled,
    api_keys_are_found_by_hash_until_revoked,
);

use parley::store::integration::Outcome;
use std::time::Duration;

mod integration {
    use parley::domain::webhook::{EventType, EventTypes, OutboxEvent, WebhookUrl};
    use parley::store::SharedStore;
    use parley::store::integration::{Attempt, Endpoint, NewEndpoint, OnFailure, Outcome};
    use std::time::Duration;

    pub async fn endpoint(store: &SharedStore, events: &[&str]) -> Endpoint {
        let names: Vec<String> = events.iter().map(|e| (*e).to_owned()).collect();
        store
            .create_webhook(NewEndpoint {
                url: WebhookUrl::parse("http://127.0.0.1:9/hook").unwrap(),
                events: EventTypes::parse(&names).unwrap(),
                secret: "whsec_c2VjcmV0".into(),
            })
            .await
            .unwrap()
    }

    pub fn attempt(outcome: Outcome) -> Attempt {
        Attempt {
            outcome,
            status: Some(if outcome == Outcome::Delivered {
                200
            } else {
                500
            }),
            error: None,
            duration_ms: 3,
        }
    }

    /// Retry at once; disable after `after` failures, however recent.
    pub fn retry_now(after: u32) -> OnFailure {
        OnFailure {
            retry_in: Duration::ZERO,
            disable_after: after,
            window: Duration::ZERO,
        }
    }

    pub fn member_added() -> OutboxEvent {
        OutboxEvent::new(EventType::MemberAdded, serde_json::json!({"user": "u"}))
    }

    pub const HOUR: Duration = Duration::from_secs(3600);
}

async fn a_room_event_enters_the_outbox_of_the_endpoints_that_want_it_in_its_append(
    store: SharedStore,
) {
    let ada = user(&*store, "ada").await;
    let room = room(&*store, &ada, RoomKind::Public).await;
    store
        .append_accepted(&[message(room.id, &ada, "before")])
        .await
        .unwrap();
    let wants = integration::endpoint(&store, &["message.created"]).await;
    let other = integration::endpoint(&store, &["member.added"]).await;
    let appended = store
        .append_accepted(&[message(room.id, &ada, "after")])
        .await
        .unwrap();

    let claimed = store.claim_webhooks(10, integration::HOUR).await.unwrap();
    assert_eq!(
        claimed.len(),
        1,
        "one row: the event after the endpoint, for the endpoint that wants it"
    );
    let row = &claimed[0];
    assert_eq!(
        (row.endpoint, row.event, row.attempt),
        (wants.id, appended[0].event().id.0, 1)
    );
    assert_eq!(row.event_type, "message.created");
    let body: serde_json::Value = serde_json::from_str(&row.body).unwrap();
    assert_eq!(body["data"]["body"], "message after");
    assert_ne!(row.endpoint, other.id);
    assert!(store.webhook_outbox_oldest().await.unwrap().is_some());
}

async fn a_claimed_delivery_waits_out_its_lease_and_a_failure_is_retried_as_the_same_event(
    store: SharedStore,
) {
    let endpoint = integration::endpoint(&store, &["member.added"]).await;
    store
        .enqueue_webhooks(&[integration::member_added()])
        .await
        .unwrap();
    let first = store.claim_webhooks(10, integration::HOUR).await.unwrap();
    assert_eq!(first.len(), 1);
    assert!(
        store
            .claim_webhooks(10, integration::HOUR)
            .await
            .unwrap()
            .is_empty(),
        "leased"
    );

    let failed = integration::attempt(Outcome::Failed);
    let disabled = store
        .finish_webhook(&first[0], &failed, integration::retry_now(5))
        .await
        .unwrap();
    assert!(!disabled);
    let second = store.claim_webhooks(10, integration::HOUR).await.unwrap();
    assert_eq!((second[0].event, second[0].attempt), (first[0].event, 2));
    assert_eq!(
        second[0].body, first[0].body,
        "the same bytes on every attempt"
    );
    let delivered = integration::attempt(Outcome::Delivered);
    store
        .finish_webhook(&second[0], &delivered, integration::retry_now(5))
        .await
        .unwrap();
    assert!(
        store
            .claim_webhooks(10, Duration::ZERO)
            .await
            .unwrap()
            .is_empty(),
        "delivered rows leave"
    );
    assert_eq!(store.webhook_outbox_oldest().await.unwrap(), None);

    let log = store
        .webhook_deliveries(endpoint.id, None, Limit::parse(None).unwrap())
        .await
        .unwrap();
    let lines: Vec<(i32, Outcome)> = log.iter().map(|d| (d.attempt, d.outcome)).collect();
    assert_eq!(
        lines,
        [(2, Outcome::Delivered), (1, Outcome::Failed)],
        "newest first"
    );
    let older = store.webhook_deliveries(endpoint.id, Some(log[0].id), Limit::parse(None).unwrap());
    assert_eq!(older.await.unwrap().len(), 1);
    assert_eq!(
        store.webhook(endpoint.id).await.unwrap().unwrap().failures,
        0
    );
}

async fn an_endpoint_failing_enough_is_disabled_queues_nothing_and_resumes_when_enabled(
    store: SharedStore,
) {
    use parley::domain::webhook::EventType;
    let endpoint = integration::endpoint(&store, &["member.added"]).await;
    assert!(store.webhook_filter().wants(EventType::MemberAdded));
    store
        .enqueue_webhooks(&[integration::member_added()])
        .await
        .unwrap();
    let failed = integration::attempt(Outcome::Error);
    for expect_disabled in [false, true] {
        let claimed = store.claim_webhooks(10, integration::HOUR).await.unwrap();
        let disabled = store
            .finish_webhook(&claimed[0], &failed, integration::retry_now(2))
            .await;
        assert_eq!(disabled.unwrap(), expect_disabled);
    }
    let stored = store.webhook(endpoint.id).await.unwrap().unwrap();
    assert!(!stored.enabled && stored.disabled_at.is_some() && stored.failures == 2);
    assert!(!store.webhook_filter().wants(EventType::MemberAdded));
    assert!(
        store
            .claim_webhooks(10, Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.webhook_outbox_oldest().await.unwrap(),
        None,
        "a disabled endpoint is not lag"
    );
    store
        .enqueue_webhooks(&[integration::member_added()])
        .await
        .unwrap();

    let enabled = store.enable_webhook(endpoint.id).await.unwrap();
    assert!(enabled.enabled && enabled.failures == 0 && enabled.disabled_at.is_none());
    let resumed = store.claim_webhooks(10, integration::HOUR).await.unwrap();
    assert_eq!(
        resumed.len(),
        1,
        "the kept row, not the event queued while disabled"
    );
    store.delete_webhook(endpoint.id).await.unwrap();
    assert!(matches!(
        store.delete_webhook(endpoint.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.enable_webhook(endpoint.id).await,
        Err(StoreError::NotFound)
    ));
}

async fn api_keys_are_found_by_hash_until_revoked(store: SharedStore) {
    use parley::domain::api_key::Scope;
    use parley::store::integration::NewApiKey;
    let key = store
        .create_api_key(NewApiKey {
            name: "backend".into(),
            prefix: "psk_abcdefgh".into(),
            hash: vec![7; 32],
            scopes: vec![Scope::RoomsWrite],
        })
        .await
        .unwrap();
    let found = store.api_key_by_hash(&[7; 32]).await.unwrap().unwrap();
    assert_eq!(
        (found.id, found.scopes.as_slice()),
        (key.id, &[Scope::RoomsWrite][..])
    );
    assert!(store.api_key_by_hash(&[8; 32]).await.unwrap().is_none());
    store.revoke_api_key(key.id).await.unwrap();
    store.revoke_api_key(key.id).await.unwrap();
    assert!(store.api_key_by_hash(&[7; 32]).await.unwrap().is_none());
    let listed = store.api_keys().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].revoked_at.is_some());
    let unknown = store.revoke_api_key(uuid::Uuid::now_v7()).await;
    assert!(matches!(unknown, Err(StoreError::NotFound)));
}

// --- Web Push (contract 1.1, 6.3) ----------------------------------------------

conformance!(
    a_notification_enqueues_one_push_per_subscription_of_its_user,
    a_claimed_push_is_held_until_its_lease_ends_and_only_its_claim_ends_it,
    a_push_subscription_is_saved_once_per_endpoint_and_deleted_by_its_owner_only,
);

fn push_subscription(user: &User, endpoint: &str) -> parley::store::push::NewPushSubscription {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    use parley::domain::push::{AllowHosts, PushEndpoint, PushKeys};
    let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
    let point = secret.public_key().to_encoded_point(false);
    let b64 =
        |b: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, b);
    parley::store::push::NewPushSubscription {
        user: user.id,
        endpoint: PushEndpoint::parse(endpoint, &AllowHosts::default()).unwrap(),
        keys: PushKeys::parse(&b64(point.as_bytes()), &b64(&[9; 16])).unwrap(),
    }
}

fn push_claim(delay_ms: u64, lease_ms: u64) -> parley::store::push::PushClaim {
    parley::store::push::PushClaim {
        lease: uuid::Uuid::new_v4(),
        delay: std::time::Duration::from_millis(delay_ms),
        lease_for: std::time::Duration::from_millis(lease_ms),
        limit: 10,
    }
}

fn mention_of(user: &User) -> NewNotification {
    NewNotification {
        user: user.id,
        kind: "mention".into(),
        payload: serde_json::json!({ "excerpt": "hi" }),
    }
}

async fn a_notification_enqueues_one_push_per_subscription_of_its_user(store: SharedStore) {
    let ada = user(&*store, "ada").await;
    let bob = user(&*store, "bob").await;
    for device in ["https://push.example.com/1", "https://push.example.com/2"] {
        store
            .save_push_subscription(push_subscription(&ada, device))
            .await
            .unwrap();
    }
    // Not due before the delay.
    store.create_notification(mention_of(&ada)).await.unwrap();
    store.create_notification(mention_of(&bob)).await.unwrap();
    assert!(
        store
            .claim_pushes(push_claim(60_000, 1_000))
            .await
            .unwrap()
            .is_empty()
    );
    // Due at once: one per subscription of Ada, none for Bob (none), and
    // a batch of notifications enqueues as a single one does.
    store
        .create_notifications(&[ada.id, bob.id], "new_post", &serde_json::json!({}))
        .await
        .unwrap();
    let claimed = store.claim_pushes(push_claim(0, 60_000)).await.unwrap();
    assert_eq!(claimed.len(), 4);
    assert!(
        claimed
            .iter()
            .all(|p| p.notification.user == ada.id && p.attempts == 1)
    );
    assert!(
        claimed
            .iter()
            .all(|p| p.unread == 2 && !p.notification.read)
    );
    let subscriptions: std::collections::BTreeSet<_> =
        claimed.iter().map(|p| p.subscription).collect();
    assert_eq!(subscriptions.len(), 2);
}

async fn a_claimed_push_is_held_until_its_lease_ends_and_only_its_claim_ends_it(
    store: SharedStore,
) {
    let ada = user(&*store, "ada").await;
    store
        .save_push_subscription(push_subscription(&ada, "https://push.example.com/1"))
        .await
        .unwrap();
    store.create_notification(mention_of(&ada)).await.unwrap();
    let first = push_claim(0, 300);
    let claimed = store.claim_pushes(first).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let id = claimed[0].id;
    // Held: another claim gets nothing while the lease runs.
    assert!(
        store
            .claim_pushes(push_claim(0, 300))
            .await
            .unwrap()
            .is_empty()
    );
    // Once it ran out, another claim takes it over; the first can no
    // longer end it, the second can, once.
    let second = push_claim(0, 60_000);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let again = loop {
        let again = store.claim_pushes(second).await.unwrap();
        if !again.is_empty() {
            break again;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the lease never ended"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!((again.len(), again[0].id, again[0].attempts), (1, id, 2));
    assert!(
        store
            .finish_pushes(&[(id, first.lease)])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !store
            .retry_push(id, first.lease, chrono::Utc::now())
            .await
            .unwrap()
    );
    // A retry frees it for a later time; then it is due again.
    assert!(
        store
            .retry_push(id, second.lease, chrono::Utc::now())
            .await
            .unwrap()
    );
    let third = push_claim(0, 60_000);
    let retried = store.claim_pushes(third).await.unwrap();
    assert_eq!((retried.len(), retried[0].attempts), (1, 3));
    // In a group, only the row whose claim holds it is ended, once.
    let finished = store
        .finish_pushes(&[(id, second.lease), (id, third.lease)])
        .await
        .unwrap();
    assert_eq!(finished, vec![id]);
    assert!(
        store
            .finish_pushes(&[(id, third.lease)])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .claim_pushes(push_claim(0, 60_000))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_push_subscription_is_saved_once_per_endpoint_and_deleted_by_its_owner_only(
    store: SharedStore,
) {
    let ada = user(&*store, "ada").await;
    let bob = user(&*store, "bob").await;
    let endpoint = "https://push.example.com/device";
    let id = store
        .save_push_subscription(push_subscription(&ada, endpoint))
        .await
        .unwrap();
    let again = store
        .save_push_subscription(push_subscription(&ada, endpoint))
        .await
        .unwrap();
    assert_eq!(id, again);
    // Another user's subscription of the same browser is their own.
    let bobs = store
        .save_push_subscription(push_subscription(&bob, endpoint))
        .await
        .unwrap();
    assert_ne!(bobs, id);
    assert_eq!(store.push_subscription_count(ada.id).await.unwrap(), 1);
    assert!(matches!(
        store.delete_push_subscription(bob.id, id).await,
        Err(StoreError::NotFound)
    ));
    // Deleting takes its pending pushes with it.
    store.create_notification(mention_of(&ada)).await.unwrap();
    store.delete_push_subscription(ada.id, id).await.unwrap();
    assert!(matches!(
        store.delete_push_subscription(ada.id, id).await,
        Err(StoreError::NotFound)
    ));
    assert!(
        store
            .claim_pushes(push_claim(0, 60_000))
            .await
            .unwrap()
            .is_empty()
    );
    // Dropped by the sender (the push service said gone), whoever owns it.
    assert!(store.drop_push_subscription(bobs).await.unwrap());
    assert!(!store.drop_push_subscription(bobs).await.unwrap());
    let unknown = parley::store::push::NewPushSubscription {
        user: UserId::new(),
        ..push_subscription(&ada, endpoint)
    };
    assert!(matches!(
        store.save_push_subscription(unknown).await,
        Err(StoreError::NotFound)
    ));
}
