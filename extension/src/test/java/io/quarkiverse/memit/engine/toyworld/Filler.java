package io.quarkiverse.memit.engine.toyworld;

import java.util.List;
import java.util.SplittableRandom;

/** Plain sentences with no facts in them, from a small grammar, so the models also learn ordinary text. */
final class Filler {

    private static final List<String> SUBJECTS = List.of("The old man", "A young woman", "The teacher", "Our neighbour",
            "The small dog", "A tired traveller", "The children", "My friend", "The farmer", "A quiet student");
    private static final List<String> VERBS = List.of("walked to", "looked at", "talked about", "waited near", "cleaned",
            "painted", "found", "carried", "remembered", "visited");
    private static final List<String> OBJECTS = List.of("the river", "the market", "a red door", "the long road",
            "an empty room", "the garden", "a wooden box", "the station", "the blue house", "a letter");
    private static final List<String> ENDINGS = List.of("in the morning", "after lunch", "before the rain", "at night",
            "on Sunday", "with great care", "without a word", "once again", "for an hour", "in the summer");

    private Filler() {
    }

    static String sentence(SplittableRandom random) {
        return pick(SUBJECTS, random) + " " + pick(VERBS, random) + " " + pick(OBJECTS, random) + " " + pick(ENDINGS, random) + ".";
    }

    private static String pick(List<String> options, SplittableRandom random) {
        return options.get(random.nextInt(options.size()));
    }
}
