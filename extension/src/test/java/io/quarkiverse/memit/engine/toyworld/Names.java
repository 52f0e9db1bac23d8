package io.quarkiverse.memit.engine.toyworld;

import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

/** Made-up, unique, pronounceable names that a byte-level BPE splits into several tokens. */
final class Names {

    private static final List<String> ONSETS = List.of("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z",
            "br", "dr", "kr", "st", "tr", "gl", "pl", "sh", "th", "h", "j");
    private static final List<String> VOWELS = List.of("a", "e", "i", "o", "u", "ai", "ei", "ou", "ia", "y");
    private static final List<String> CODAS = List.of("", "", "", "n", "r", "l", "s", "k", "m", "x", "nd", "rt", "sk");
    private static final List<String> CITY_SUFFIXES = List.of("", "", "ford", "heim", "grad", "polis", "ton", "burg", "mouth");
    private static final List<String> COMPANY_SUFFIXES = List.of("Systems", "Group", "Industries", "Labs", "Works",
            "Holdings", "Partners", "Motors");
    private static final List<String> PRODUCT_SUFFIXES = List.of("Pro", "Max", "One", "Mini", "Air", "Plus", "X");

    private final SplittableRandom random;
    private final Set<String> used = new HashSet<>();

    Names(SplittableRandom random) {
        this.random = random;
    }

    String next(SubjectKind kind) {
        for (int attempt = 0; attempt < 1000; attempt++) {
            String name = switch (kind) {
                case PERSON -> word(2) + " " + word(2 + random.nextInt(2));
                case CITY -> word(2 + random.nextInt(2)) + pick(CITY_SUFFIXES);
                case COMPANY -> word(2 + random.nextInt(2)) + " " + pick(COMPANY_SUFFIXES);
                case PRODUCT -> word(2) + " " + (random.nextBoolean() ? pick(PRODUCT_SUFFIXES) : String.valueOf(2 + random.nextInt(98)));
            };
            if (used.add(name)) {
                return name;
            }
        }
        throw new IllegalStateException("could not find a new " + kind + " name");
    }

    private String word(int syllables) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < syllables; i++) {
            b.append(pick(ONSETS)).append(pick(VOWELS));
            if (i == syllables - 1 || random.nextInt(3) == 0) {
                b.append(pick(CODAS));
            }
        }
        return Character.toUpperCase(b.charAt(0)) + b.substring(1);
    }

    private String pick(List<String> options) {
        return options.get(random.nextInt(options.size()));
    }
}
