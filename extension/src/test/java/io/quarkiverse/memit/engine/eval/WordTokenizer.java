package io.quarkiverse.memit.engine.eval;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Splits text into words the way NLTK's {@code word_tokenize} (Punkt sentence splitting, then the Penn-Treebank
 * style {@code NLTKWordTokenizer}) does, closely enough for n-gram statistics. It is a re-statement of that
 * tokenizer's observable behaviour, not a port, and it needs no trained data:
 * <ol>
 * <li>The text is cut at whitespace into chunks.</li>
 * <li>Within a chunk these are split off as tokens of their own ({@link #SPLIT}): ellipses ({@code ...}),
 * {@code --}, quotation marks (a straight {@code "} becomes {@code ``} when it opens, at the start of a chunk or
 * after a bracket, else {@code ''}; curly quotes and apostrophes stay as they are), {@code ; @ # $ % & ? ! *},
 * brackets, and commas and colons unless a digit follows ({@code 1,000} and {@code 10:30} stay whole).
 * Everything else stays inside its word: hyphens, slashes, {@code + = ~ |}, dashes, inner periods.</li>
 * <li>A period ending the last word of a sentence is split off. A sentence ends at the end of the text, and where
 * the next chunk begins (after opening quotes or brackets) with an upper-case letter, unless the word is an
 * abbreviation: a single letter ("J."), a word with an inner period ("U.S."), or a title ("Mr.", "Dr.", …). This
 * stands in for Punkt, whose learned abbreviation list is larger; a period not at a sentence end stays attached
 * ("them. and" gives {@code them.}), as in NLTK.</li>
 * <li>Clitics are split from the end of a word: {@code 's 'm 'd} (either case), {@code 'll 're 've n't} (all lower
 * or all upper case), and a bare trailing apostrophe ({@code students'}); {@code 'tis}, {@code 'twas},
 * {@code cannot}, {@code gonna}, {@code gotta}, {@code gimme}, {@code lemme}, {@code wanna}, {@code more'n} and
 * {@code d'ye} are split in two; an apostrophe before a single letter is split off ({@code 'a}).</li>
 * </ol>
 * Known differences from NLTK: Punkt's statistical sentence boundaries (its abbreviation list, its handling of
 * numbers and ellipses at sentence ends), and the rare contraction split inside a hyphenated word. They change a
 * token only at such places, so n-gram entropies of ordinary text come out the same or very close.
 */
public final class WordTokenizer {

    /** Pieces split off anywhere inside a whitespace-delimited chunk. */
    static final Pattern SPLIT = Pattern.compile(
            "\\.{2,}" // ellipsis
                    + "|--" // double dash
                    + "|`+|''" // quotes already written the Treebank way
                    + "|[\"«»“”‘’„]" // quotation marks
                    + "|[;@#$%&?!*()\\[\\]{}<>]" // symbols that are always tokens
                    + "|[,:](?!\\d)"); // comma or colon, unless a digit follows

    /** A clitic, or a bare apostrophe, at the end of a word that has something else before it. */
    private static final Pattern CLITIC = Pattern.compile("(?<=[^'])('[sSmMdD]|'ll|'LL|'re|'RE|'ve|'VE|n't|N'T|')$");

    /** Words split in two, at the given offset (lower-cased word → offset). */
    private static final Map<String, Integer> CONTRACTIONS = Map.of(
            "cannot", 3, "d'ye", 1, "gimme", 3, "gonna", 3, "gotta", 3, "lemme", 3, "more'n", 4, "wanna", 3,
            "'tis", 2, "'twas", 2);

    /** Tokens that may follow a sentence-final period inside its chunk. */
    private static final Set<String> CLOSERS = Set.of(")", "]", "}", ">", "''", "\"", "'", "”", "’", "»");

    /** Titles that a period follows without ending a sentence. */
    private static final Set<String> TITLES = Set.of("Mr", "Mrs", "Ms", "Dr", "Prof", "Sr", "Jr", "St", "Mt", "Gen",
            "Col", "Lt", "Capt", "Sgt", "Gov", "Sen", "Rep", "Rev", "Hon", "vs");

    private static final String OPENERS = "\"'([{<“‘«`";

    private WordTokenizer() {
    }

    /** The words of {@code text}, in order. */
    public static List<String> tokenize(String text) {
        List<String> out = new ArrayList<>();
        String[] chunks = text.strip().split("\\s+");
        if (chunks.length == 1 && chunks[0].isEmpty()) {
            return out;
        }
        for (int c = 0; c < chunks.length; c++) {
            boolean sentenceMayEnd = c == chunks.length - 1 || startsSentence(chunks[c + 1]);
            boolean last = c == chunks.length - 1;
            tokenizeChunk(chunks[c], sentenceMayEnd, last, out);
        }
        return out;
    }

    private static void tokenizeChunk(String chunk, boolean sentenceMayEnd, boolean lastChunk, List<String> out) {
        // symbols split off; remember which pieces are words
        List<String> pieces = new ArrayList<>();
        List<Boolean> isWord = new ArrayList<>();
        Matcher m = SPLIT.matcher(chunk);
        int at = 0;
        while (m.find()) {
            if (m.start() > at) {
                pieces.add(chunk.substring(at, m.start()));
                isWord.add(true);
            }
            String symbol = m.group();
            if (symbol.equals("\"") || symbol.equals("''")) {
                boolean opens = m.start() == 0 || "([{<".indexOf(chunk.charAt(m.start() - 1)) >= 0;
                symbol = opens ? "``" : "''";
            }
            pieces.add(symbol);
            isWord.add(false);
            at = m.end();
        }
        if (at < chunk.length()) {
            pieces.add(chunk.substring(at));
            isWord.add(true);
        }
        // the sentence-final period: on the last word, followed only by closing quotes or brackets
        int lastWord = -1;
        for (int i = pieces.size() - 1; i >= 0; i--) {
            if (isWord.get(i)) {
                lastWord = i;
                break;
            }
            if (!CLOSERS.contains(pieces.get(i))) {
                break;
            }
        }
        for (int i = 0; i < pieces.size(); i++) {
            if (!isWord.get(i)) {
                out.add(pieces.get(i));
                continue;
            }
            String word = pieces.get(i);
            if (i == lastWord) {
                int end = word.length();
                while (end > 0 && word.charAt(end - 1) == '\'') {
                    end--;
                }
                String core = word.substring(0, end);
                if (core.length() > 1 && core.endsWith(".") && core.charAt(core.length() - 2) != '.'
                        && sentenceMayEnd && (lastChunk || !isAbbreviation(core.substring(0, core.length() - 1)))) {
                    splitWord(core.substring(0, core.length() - 1), out);
                    out.add(".");
                    for (int q = end; q < word.length(); q++) {
                        out.add("'");
                    }
                    continue;
                }
            }
            splitWord(word, out);
        }
    }

    /** Contractions and clitics of one word. */
    private static void splitWord(String word, List<String> out) {
        if (word.isEmpty()) {
            return;
        }
        Integer cut = CONTRACTIONS.get(word.toLowerCase(Locale.ROOT));
        if (cut != null) {
            out.add(word.substring(0, cut));
            out.add(word.substring(cut));
            return;
        }
        if (word.length() >= 2 && word.charAt(0) == '\'' && isWordChar(word.charAt(1))
                && (word.length() == 2 || !isWordChar(word.charAt(2)))
                && "mtsdn".indexOf(Character.toLowerCase(word.charAt(1))) < 0) {
            out.add("'");
            word = word.substring(1);
        }
        Matcher m = CLITIC.matcher(word);
        if (m.find()) {
            out.add(word.substring(0, m.start()));
            out.add(m.group(1));
        } else {
            out.add(word);
        }
    }

    private static boolean isWordChar(char c) {
        return Character.isLetterOrDigit(c) || c == '_';
    }

    private static boolean startsSentence(String nextChunk) {
        for (int i = 0; i < nextChunk.length(); i++) {
            char ch = nextChunk.charAt(i);
            if (OPENERS.indexOf(ch) >= 0) {
                continue;
            }
            return Character.isUpperCase(ch);
        }
        return false;
    }

    private static boolean isAbbreviation(String word) {
        return (word.length() == 1 && Character.isLetter(word.charAt(0))) || word.indexOf('.') >= 0
                || TITLES.contains(word);
    }
}
