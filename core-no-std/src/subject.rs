//! Subjects: validation, tokens and wildcard matching (filled in by the subject work).
