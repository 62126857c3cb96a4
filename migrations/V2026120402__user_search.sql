-- User search (contract 1.1, 6.2): a prefix of a username or a display
-- name, ignoring case. Byte order ("C") lets a prefix be an index range,
-- `lower(x) >= prefix AND lower(x) < prefix || U+10FFFF`, that a prepared
-- statement's generic plan still uses (a LIKE pattern in a parameter
-- would not).
CREATE INDEX users_username_search_idx ON users ((lower(username) COLLATE "C"));
CREATE INDEX users_display_name_search_idx ON users ((lower(display_name) COLLATE "C"))
    WHERE display_name <> '';
