package io.quarkiverse.memit.engine.toyworld;

/** What a subject of the toy world is; each relation applies to one kind. */
public enum SubjectKind {
    PERSON,
    CITY,
    COMPANY,
    PRODUCT
}
