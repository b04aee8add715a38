"""The vendors' console: a message log of every verified gateway call and a page to read it (/console/)."""
