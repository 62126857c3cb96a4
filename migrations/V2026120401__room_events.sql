-- Room events (contract 1.1, section 6.1): a room's seq numbers events of
-- four kinds, stored in the one log. Edits, deletes and reactions are
-- folded into their target message's row when they are written, so a
-- history page reads each message's current state off one row.

ALTER TABLE room_messages
    ADD COLUMN kind        text        NOT NULL DEFAULT 'message'
        CHECK (kind IN ('message', 'edit', 'delete', 'reaction')),
    -- edit, delete, reaction: the seq of the message they apply to.
    ADD COLUMN target      bigint,
    -- message: the seq of the message it replies to.
    ADD COLUMN reply_to    bigint,
    -- reaction: which emoji, set or cleared, and how many users held it
    -- on the message once it applied.
    ADD COLUMN emoji          text,
    ADD COLUMN reaction_on    boolean,
    ADD COLUMN reaction_count bigint,
    -- message, folded: when last edited, whether deleted (body then ''),
    -- and the reaction counts by emoji.
    ADD COLUMN edited_at   timestamptz,
    ADD COLUMN deleted     boolean     NOT NULL DEFAULT false,
    ADD COLUMN reactions   jsonb       NOT NULL DEFAULT '{}',
    ADD CONSTRAINT room_messages_target_check CHECK ((kind = 'message') = (target IS NULL)),
    ADD CONSTRAINT room_messages_reaction_check
        CHECK ((kind = 'reaction') = (emoji IS NOT NULL AND reaction_on IS NOT NULL));

-- A thread: the replies to one message, in seq order.
CREATE INDEX room_messages_reply_idx ON room_messages (room_id, reply_to, seq)
    WHERE reply_to IS NOT NULL;
-- A delete erases the edits of its message too.
CREATE INDEX room_messages_edit_idx ON room_messages (room_id, target) WHERE kind = 'edit';
-- The messages of a room without its other events: history pages walk it
-- (a page of the newest messages must not step over every reaction since),
-- and unread counts read it alone (author and deleted are in it), from the
-- reader's cursor on.
CREATE INDEX room_messages_history_idx ON room_messages (room_id, seq) INCLUDE (author, deleted)
    WHERE kind = 'message';

-- Who holds which emoji on which message; the counts live folded on the
-- message row. Written only under the room's lock, like the log.
CREATE TABLE message_reactions (
    room_id uuid   NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq     bigint NOT NULL,
    user_id uuid   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    emoji   text   NOT NULL,
    -- Also serves "my reactions on this page of messages".
    PRIMARY KEY (room_id, seq, user_id, emoji)
);

-- Each user's read cursor per room: only ever moves forward.
CREATE TABLE read_cursors (
    room_id uuid   NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id uuid   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    seq     bigint NOT NULL CHECK (seq >= 0),
    PRIMARY KEY (room_id, user_id)
);
-- "The rooms a user has read in", for the unread badge total.
CREATE INDEX read_cursors_user_idx ON read_cursors (user_id, room_id);

-- A deleted message withdraws the notifications about it.
CREATE INDEX notifications_message_idx ON notifications ((payload ->> 'room'), (payload ->> 'seq'))
    WHERE read_at IS NULL AND kind IN ('mention', 'direct_message');
