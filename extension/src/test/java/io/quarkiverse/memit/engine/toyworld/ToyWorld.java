package io.quarkiverse.memit.engine.toyworld;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * A generated world of made-up subjects and facts about them, deterministic from a seed: the knowledge the toy
 * models are trained on, and the CounterFact-style cases MEMIT is evaluated on.
 *
 * @param seed the seed it was generated from
 * @param relations the relations, each with its templates and objects
 * @param facts every fact, with the templates it is trained with and its paraphrase templates
 * @param filler sentences without facts, so the model also learns plain language
 */
public record ToyWorld(long seed, List<Relation> relations, List<Fact> facts, List<String> filler) {

    /** How large a world to make. */
    public record Spec(int people, int cities, int companies, int products, int relationsPerSubject,
            int trainTemplatesPerFact, double fillerRatio) {

        /** ≥ 1,500 subjects, about 4,000 facts, each trained with 2 of its relation's 4 templates. */
        public static Spec standard() {
            return new Spec(700, 300, 300, 200, 2, 2, 0.1);
        }

        public int subjects() {
            return people + cities + companies + products;
        }
    }

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final List<String> LANGUAGES = List.of("French", "English", "Spanish", "German", "Italian", "Dutch",
            "Russian", "Japanese", "Polish", "Swedish");
    private static final List<String> COUNTRIES = List.of("France", "Germany", "Canada", "Brazil", "Japan", "India",
            "Italy", "Spain", "Sweden", "Mexico", "Egypt", "Kenya");
    private static final List<String> CITIES = List.of("Paris", "London", "Tokyo", "Berlin", "Toronto", "Madrid", "Rome",
            "Chicago", "Sydney", "Cairo");

    /** The relations: 13, each with 4 templates; people, cities, companies and products. */
    public static List<Relation> catalog() {
        return List.of(
                new Relation("P103", SubjectKind.PERSON, List.of("The mother tongue of {} is", "{}'s mother tongue is",
                        "{} grew up speaking", "The first language of {} is"), LANGUAGES),
                new Relation("P1412", SubjectKind.PERSON, List.of("{} writes in", "{} is fluent in",
                        "The working language of {} is", "At work, {} speaks"), LANGUAGES),
                new Relation("P27", SubjectKind.PERSON, List.of("{} is a citizen of", "{} holds a passport from",
                        "The nationality of {} is that of", "{} has citizenship of"), COUNTRIES),
                new Relation("P641", SubjectKind.PERSON, List.of("{} plays the sport of", "{} competes in",
                        "The sport of {} is", "{} is a professional player of"),
                        List.of("football", "basketball", "tennis", "baseball", "cricket", "hockey", "golf", "rugby")),
                new Relation("P106", SubjectKind.PERSON, List.of("{} works as a", "The profession of {} is",
                        "{} is known as a", "By profession, {} is a"),
                        List.of("doctor", "lawyer", "teacher", "pilot", "chef", "painter", "engineer", "farmer", "writer",
                                "nurse")),
                new Relation("P1303", SubjectKind.PERSON, List.of("{} plays the instrument", "The instrument of {} is the",
                        "{} performs on the", "{} is a musician who plays the"),
                        List.of("piano", "guitar", "violin", "drums", "flute", "trumpet", "cello", "harp")),
                new Relation("P17", SubjectKind.CITY, List.of("{} is located in the country of", "{} is a city in",
                        "The country of {} is", "{} lies in"), COUNTRIES),
                new Relation("P37", SubjectKind.CITY, List.of("The official language of {} is", "In {}, people speak",
                        "The language of {} is", "Residents of {} speak"), LANGUAGES),
                new Relation("P159", SubjectKind.COMPANY, List.of("{} is headquartered in", "The headquarters of {} are in",
                        "{} has its head office in", "The main office of {} is in"), CITIES),
                new Relation("P452", SubjectKind.COMPANY, List.of("{} operates in the industry of", "The industry of {} is",
                        "{} is a company in", "{} does business in"),
                        List.of("banking", "software", "mining", "retail", "aviation", "shipping", "insurance", "farming")),
                new Relation("P169", SubjectKind.COMPANY, List.of("The CEO of {} is", "{} is led by",
                        "The chief executive of {} is", "{} is run by"),
                        List.of("Anna Berg", "Marco Rossi", "Yuki Tanaka", "Omar Haddad", "Lena Novak", "Carlos Vega",
                                "Priya Shah", "Tom Becker")),
                new Relation("P176", SubjectKind.PRODUCT, List.of("{} is made by", "{} is produced by",
                        "The manufacturer of {} is", "{} is a product of"),
                        List.of("Toyota", "Nokia", "Apple", "Sony", "Siemens", "Honda", "Intel", "Samsung", "Philips",
                                "Boeing")),
                new Relation("P495", SubjectKind.PRODUCT, List.of("{} was created in", "{} originated in",
                        "The country of origin of {} is", "{} comes from"), COUNTRIES));
    }

    /** Generates a world from a seed. */
    public static ToyWorld generate(long seed, Spec spec) {
        SplittableRandom random = new SplittableRandom(seed);
        List<Relation> relations = catalog();
        Names names = new Names(random.split());
        List<Fact> facts = new ArrayList<>();
        Map<SubjectKind, Integer> counts = Map.of(SubjectKind.PERSON, spec.people(), SubjectKind.CITY, spec.cities(),
                SubjectKind.COMPANY, spec.companies(), SubjectKind.PRODUCT, spec.products());
        for (SubjectKind kind : SubjectKind.values()) {
            List<Relation> applicable = relations.stream().filter(r -> r.subjectKind() == kind).toList();
            for (int s = 0; s < counts.get(kind); s++) {
                String subject = names.next(kind);
                List<Relation> chosen = new ArrayList<>(applicable);
                shuffle(chosen, random);
                for (Relation r : chosen.subList(0, Math.min(spec.relationsPerSubject(), chosen.size()))) {
                    String object = r.objects().get(random.nextInt(r.objects().size()));
                    List<Integer> templates = new ArrayList<>();
                    for (int t = 0; t < r.templates().size(); t++) {
                        templates.add(t);
                    }
                    shuffle(templates, random);
                    int k = spec.trainTemplatesPerFact();
                    facts.add(new Fact(subject, kind, r.id(), object, templates.subList(0, k), templates.subList(k, templates.size())));
                }
            }
        }
        int fillerCount = (int) Math.round(spec.fillerRatio() * facts.size() * spec.trainTemplatesPerFact());
        List<String> filler = new ArrayList<>();
        for (int i = 0; i < fillerCount; i++) {
            filler.add(Filler.sentence(random));
        }
        return new ToyWorld(seed, relations, List.copyOf(facts), List.copyOf(filler));
    }

    public Relation relation(String id) {
        for (Relation r : relations) {
            if (r.id().equals(id)) {
                return r;
            }
        }
        throw new IllegalArgumentException("no relation " + id);
    }

    /** The sentence stating a fact with one of its templates: "The mother tongue of X is French." */
    public String sentence(Fact fact, int template) {
        return relation(fact.relationId()).prompt(template, fact.subject()) + " " + fact.object() + ".";
    }

    /** The training corpus: each fact once per training template, plus filler, in generation order. */
    public List<String> trainingTexts() {
        List<String> texts = new ArrayList<>();
        for (Fact f : facts) {
            for (int t : f.trainTemplates()) {
                texts.add(sentence(f, t));
            }
        }
        texts.addAll(filler);
        return texts;
    }

    /** Number of distinct subjects. */
    public int subjectCount() {
        Set<String> s = new HashSet<>();
        facts.forEach(f -> s.add(f.subject()));
        return s.size();
    }

    /**
     * CounterFact-style cases in CounterFact's own JSON schema: the rewrite prompt is a template the fact was trained
     * with, paraphrases are its other templates, neighbours are other subjects with the same relation and true
     * object, generation prompts ask about the subject's other relations.
     */
    public ArrayNode counterFact(int cases, long caseSeed) {
        SplittableRandom random = new SplittableRandom(caseSeed);
        List<Fact> order = new ArrayList<>(facts);
        shuffle(order, random);
        Map<String, List<Fact>> byRelationObject = new HashMap<>();
        for (Fact f : facts) {
            byRelationObject.computeIfAbsent(f.relationId() + "|" + f.object(), k -> new ArrayList<>()).add(f);
        }
        ArrayNode out = JSON.createArrayNode();
        for (int c = 0; c < Math.min(cases, order.size()); c++) {
            Fact f = order.get(c);
            Relation r = relation(f.relationId());
            List<String> others = new ArrayList<>(r.objects());
            others.remove(f.object());
            String newObject = others.get(random.nextInt(others.size()));
            ObjectNode record = out.addObject();
            record.put("case_id", c);
            ObjectNode rewrite = record.putObject("requested_rewrite");
            rewrite.put("prompt", r.templates().get(f.trainTemplates().get(0)));
            rewrite.put("relation_id", r.id());
            rewrite.putObject("target_new").put("str", newObject);
            rewrite.putObject("target_true").put("str", f.object());
            rewrite.put("subject", f.subject());
            ArrayNode paraphrases = record.putArray("paraphrase_prompts");
            f.paraphraseTemplates().forEach(t -> paraphrases.add(r.prompt(t, f.subject())));
            record.set("neighborhood_prompts", neighbours(byRelationObject.get(r.id() + "|" + f.object()), f, r, random));
            record.set("attribute_prompts", neighbours(byRelationObject.getOrDefault(r.id() + "|" + newObject, List.of()), f,
                    r, random));
            ArrayNode generation = record.putArray("generation_prompts");
            for (Relation other : relations) {
                if (other.subjectKind() == f.kind() && !other.id().equals(r.id()) && generation.size() < 4) {
                    generation.add(other.prompt(0, f.subject()));
                }
            }
            generation.add(r.prompt(f.paraphraseTemplates().get(0), f.subject()));
        }
        return out;
    }

    private ArrayNode neighbours(List<Fact> candidates, Fact self, Relation r, SplittableRandom random) {
        List<Fact> pool = new ArrayList<>(candidates);
        pool.removeIf(n -> n.subject().equals(self.subject()));
        shuffle(pool, random);
        ArrayNode prompts = JSON.createArrayNode();
        for (Fact n : pool.subList(0, Math.min(10, pool.size()))) {
            prompts.add(r.prompt(n.trainTemplates().get(0), n.subject()));
        }
        return prompts;
    }

    /**
     * Writes {@code world.json} (relations, and facts with their templates) and {@code counterfact.json}; the training
     * corpus is {@link #trainingTexts()} of the same world.
     */
    public void write(Path dir, int counterFactCases) throws IOException {
        Files.createDirectories(dir);
        Map<String, Object> world = new LinkedHashMap<>();
        world.put("seed", seed);
        world.put("relations", relations);
        world.put("facts", facts);
        JSON.writeValue(dir.resolve("world.json").toFile(), world);
        JSON.writeValue(dir.resolve("counterfact.json").toFile(), counterFact(counterFactCases, seed + 1));
    }

    static <T> void shuffle(List<T> list, SplittableRandom random) {
        for (int i = list.size() - 1; i > 0; i--) {
            Collections.swap(list, i, random.nextInt(i + 1));
        }
    }
}
