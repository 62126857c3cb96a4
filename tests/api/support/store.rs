//! Rows made straight through a [`Store`], for the tests of the stores
//! themselves (no HTTP in between).

use parley::domain::{ClientId, Email, MessageBody, RoomId, RoomKind, RoomName, UserId, Username};
use parley::store::{NewUser, Room, Store, User};
use parley_actors::model::{Action, Appended, NewEvent};
use parley_actors::ports::{LogError, MessageLog};

/// A user `name` with e-mail `name@example.com` and a stub password hash.
pub async fn user(store: &dyn Store, name: &str) -> User {
    let new = NewUser {
        id: UserId::new(),
        username: Username::parse(name).unwrap(),
        email: Email::parse(&format!("{name}@example.com")).unwrap(),
        password_hash: format!("$argon2id$stub${name}"),
    };
    store.create_user(new).await.unwrap()
}

/// A room of `kind` named after it, created (and so owned) by `creator`.
pub async fn room(store: &dyn Store, creator: &User, kind: RoomKind) -> Room {
    let name = RoomName::parse(&format!("{kind} room")).unwrap();
    store.create_room(creator.id, name, kind).await.unwrap()
}

/// A message to append: `client_id`, with body `message {client_id}`.
pub fn message(room: RoomId, author: &User, client_id: &str) -> NewEvent {
    NewEvent::message(
        room,
        author.id,
        ClientId::parse(client_id).unwrap(),
        MessageBody::parse(&format!("message {client_id}")).unwrap(),
    )
}

/// An event of any kind by `author`, keyed `client_id`.
pub fn event(room: RoomId, author: &User, client_id: &str, action: Action) -> NewEvent {
    NewEvent {
        room,
        author: author.id,
        client_id: ClientId::parse(client_id).unwrap(),
        action,
        moderator: false,
    }
}

/// `append` for batches the rules accept: a refusal fails the test.
#[async_trait::async_trait]
pub trait AppendAccepted {
    async fn append_accepted(&self, batch: &[NewEvent]) -> Result<Vec<Appended>, LogError>;
}

#[async_trait::async_trait]
impl<T: MessageLog + ?Sized> AppendAccepted for T {
    async fn append_accepted(&self, batch: &[NewEvent]) -> Result<Vec<Appended>, LogError> {
        let appended = self.append(batch).await?;
        Ok(appended
            .into_iter()
            .map(|a| a.expect("the rules refused an event"))
            .collect())
    }
}
