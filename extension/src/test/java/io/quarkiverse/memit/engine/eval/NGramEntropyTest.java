package io.quarkiverse.memit.engine.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import org.junit.jupiter.api.Test;

class NGramEntropyTest {

    private static final double EPS = 1e-12;
    private static final double LOG2_3 = Math.log(3) / Math.log(2);

    @Test
    void repeatedPairHasHandComputedEntropy() {
        // words a b a b
        // bigrams (a,b) ×2, (b,a) ×1 → H₂ = −(2/3 log₂ 2/3 + 1/3 log₂ 1/3) = log₂3 − 2/3 ≈ 0.918296
        // trigrams (a,b,a), (b,a,b) → H₃ = 1
        // GE = (2/3 · H₂ + 4/3 · H₃) / 2 = H₂/3 + 2/3 ≈ 0.972765
        double h2 = LOG2_3 - 2.0 / 3;
        assertEquals(h2, NGramEntropy.entropyBits(List.of("a", "b", "a", "b"), 2), EPS);
        assertEquals(1.0, NGramEntropy.entropyBits(List.of("a", "b", "a", "b"), 3), EPS);
        assertEquals(h2 / 3 + 2.0 / 3, NGramEntropy.of("a b a b"), EPS);
        assertEquals(0.972765, NGramEntropy.of("a b a b"), 1e-6);
    }

    @Test
    void threeWords() {
        // bigrams (the,cat), (cat,sat): H₂ = 1; one trigram: H₃ = 0 → GE = (2/3 · 1 + 0) / 2 = 1/3
        assertEquals(1.0 / 3, NGramEntropy.of("the cat sat"), EPS);
    }

    @Test
    void allDistinctWords() {
        // x y z w: 3 distinct bigrams → H₂ = log₂3; 2 distinct trigrams → H₃ = 1 → GE = log₂3/3 + 2/3 ≈ 1.194988
        assertEquals(LOG2_3 / 3 + 2.0 / 3, NGramEntropy.of("x y z w"), EPS);
    }

    @Test
    void repetitionAndShortTextsScoreZero() {
        // a a a a a: one bigram and one trigram type → H₂ = H₃ = 0
        assertEquals(0.0, NGramEntropy.of("a a a a a"), EPS);
        // fewer words than n: no n-gram at all, the reference's empty distribution sums to 0
        assertEquals(0.0, NGramEntropy.of("hello"), EPS);
        assertEquals(0.0, NGramEntropy.of(""), EPS);
        // two words: H₂ = 0 (one bigram), no trigram
        assertEquals(0.0, NGramEntropy.of("hello world"), EPS);
    }

    @Test
    void punctuationIsAWord() {
        // Paris . Paris . has the n-grams of a b a b
        assertEquals(NGramEntropy.of("a b a b"), NGramEntropy.of("Paris. Paris."), EPS);
    }

    @Test
    void meanOverTextsIsArithmetic() {
        assertEquals((NGramEntropy.of("a b a b") + 1.0 / 3) / 2, NGramEntropy.mean(List.of("a b a b", "the cat sat")), EPS);
        assertTrue(Double.isNaN(NGramEntropy.mean(List.of())));
    }

    @Test
    void customOrdersAndWeights() {
        // unigrams of a b a b: p = 1/2, 1/2 → H₁ = 1; weight 3 on one order → 3
        assertEquals(3.0, NGramEntropy.ofWords(List.of("a", "b", "a", "b"), new int[] { 1 }, new double[] { 3 }), EPS);
    }

    /** Expected tokens are what NLTK 3.8's word_tokenize gives for these sentences. */
    @Test
    void wordsSplitLikeNltk() {
        assertEquals(List.of("Good", "muffins", "cost", "$", "3.88", "(", "roughly", "3,36", "euros", ")", "in", "New",
                "York", ".", "Please", "buy", "me", "two", "of", "them", ".", "Thanks", "."),
                WordTokenizer.tokenize("Good muffins cost $3.88 (roughly 3,36 euros)\nin New York.  Please buy me\ntwo of them.\n\nThanks."));
        assertEquals(List.of("hi", ",", "my", "name", "ca", "n't", "hello", ",", "They", "'ll", "save", "``", "and", "''",
                "invest", "1,000", "o'clock", "well-known", "...", "--", "."),
                WordTokenizer.tokenize("hi, my name can't hello, They'll save \"and\" invest 1,000 o'clock well-known ... --."));
        assertEquals(List.of("I", "'m", "you", "'re", "he", "'d", "we", "'ve", "'t", "is", "the", "students", "'", "books"),
                WordTokenizer.tokenize("I'm you're he'd we've 'tis the students' books"));
        assertEquals(List.of("a+b", "a/b", "a—b", "5", "%", "#", "tag", "@", "me", "end", ":", "10:30", ",", "a", ",", "b",
                "a,5"), WordTokenizer.tokenize("a+b a/b a—b 5% #tag @me end: 10:30, a,b a,5"));
        assertEquals(List.of("He", "said", ":", "``", "It", "is", "over", ".", "''", "Then", "he", "left", "."),
                WordTokenizer.tokenize("He said: \"It is over.\" Then he left."));
        assertEquals(List.of("can", "not", "gon", "na", "JOHN", "'S", "HOUSE", "WO", "N'T", "it", "'s", "."),
                WordTokenizer.tokenize("cannot gonna JOHN'S HOUSE WON'T it's."));
        assertEquals(List.of(), WordTokenizer.tokenize(" \n "));
    }

    /** Where Punkt's trained model decides, the documented stand-in: lower case next, titles and initials. */
    @Test
    void sentenceBoundaryStandIn() {
        assertEquals(List.of("them.", "and", "Mr.", "Smith", "met", "J.", "Doe", "."),
                WordTokenizer.tokenize("them. and Mr. Smith met J. Doe."));
        assertEquals(List.of("in", "the", "U.S.", "Then", "home", "."), WordTokenizer.tokenize("in the U.S. Then home."));
    }
}
