package stedi.sqlguard;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;

import org.apache.spark.QueryContext;
import org.apache.spark.sql.AnalysisException;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.SparkSessionExtensions;
import org.apache.spark.sql.catalyst.FunctionIdentifier;
import org.apache.spark.sql.catalyst.TableIdentifier;
import org.apache.spark.sql.catalyst.analysis.ExpressionWithUnresolvedIdentifier;
import org.apache.spark.sql.catalyst.analysis.FunctionRegistry$;
import org.apache.spark.sql.catalyst.analysis.TableFunctionRegistry$;
import org.apache.spark.sql.catalyst.analysis.UnresolvedFunction;
import org.apache.spark.sql.catalyst.analysis.UnresolvedGenerator;
import org.apache.spark.sql.catalyst.analysis.UnresolvedTableValuedFunction;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.ExpressionInfo;
import org.apache.spark.sql.catalyst.expressions.Literal;
import org.apache.spark.sql.catalyst.expressions.RuntimeReplaceable;
import org.apache.spark.sql.catalyst.expressions.SubqueryExpression;
import org.apache.spark.sql.catalyst.parser.ParameterContext;
import org.apache.spark.sql.catalyst.parser.ParseException;
import org.apache.spark.sql.catalyst.parser.ParserInterface;
import org.apache.spark.sql.catalyst.parser.SqlStatementSplitResult;
import org.apache.spark.sql.catalyst.parser.TemporalIdentifier;
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan;
import org.apache.spark.sql.catalyst.plans.logical.View;
import org.apache.spark.sql.catalyst.trees.TreeNode;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.StructType;

import scala.Function1;
import scala.Function2;
import scala.Option;
import scala.Product;
import scala.Tuple2;
import scala.collection.immutable.Seq;
import scala.runtime.AbstractFunction1;
import scala.runtime.AbstractFunction2;
import scala.runtime.BoxedUnit;

/**
 * A Spark session extension (spark.sql.extensions=stedi.sqlguard.ReadOnlyGuard) that makes a session read-only.
 *
 * <p>It injects two checks, which do nothing unless the session sets spark.stedi.sql.readOnly=true, so other
 * sessions of the same application (a Spark Connect server shared with Dagster runs) are unaffected.
 *
 * <p>The first wraps the session's SQL parser: every function a parsed statement names (calls, table functions,
 * LATERAL VIEW generators, IDENTIFIER(...) spellings) must be an allowed built-in function, and the session must
 * have spark.sql.runSQLOnFiles=false. It runs before the analyzer, which loads the classes reflect names, opens
 * files named as tables (json.`/path`) when SQL on files is on, and evaluates constant expressions (VALUES rows,
 * IDENTIFIER(...), LIMIT), so removing their functions from the plan the second check sees.
 *
 * <p>The second is a check rule, which Spark runs on every analyzed plan before anything of it is executed. It
 * walks the whole analyzed plan, subqueries included, and refuses it unless every part of it is on an allowlist:
 * <ul>
 *   <li>relations: only the local temporary views named in spark.stedi.sql.readOnly.views, which the session
 *       registered itself before turning the flag on; their bodies (our own reads) are not walked. Any other
 *       relation (a file named by path, a catalog table, another view, an RDD) is refused;</li>
 *   <li>plan operators: plain query operators (projection, filter, join, aggregation, window, sort, limit, set
 *       operations, CTEs, inline tables, generators, sampling, hints): never a script transformation, a command
 *       (SET, CREATE, INSERT, CACHE, ADD JAR, ...) or a Python/Scala function;</li>
 *   <li>expressions: the classes of Spark's built-in functions in the allowed groups, read from Spark's own
 *       function registry, minus reflect / java_method / try_reflect, the XML, Avro and Protobuf functions; the
 *       classes some built-in functions are built into (BUILT); structural expressions (columns, aliases,
 *       literals, sort orders, window specifications, lambda variables, subqueries); and the internal calls
 *       (StaticInvoke, Invoke) that an allowed built-in function is implemented with, only inside it.</li>
 * </ul>
 * A refusal is an AnalysisException whose message starts with [STEDI_READ_ONLY version] (the guard's version).
 */
public final class ReadOnlyGuard extends AbstractFunction1<SparkSessionExtensions, BoxedUnit> {
    public static final String ENABLED = "spark.stedi.sql.readOnly";
    public static final String VIEWS = "spark.stedi.sql.readOnly.views";
    public static final String MARK = "STEDI_READ_ONLY";
    private static final String SQL_ON_FILES = "spark.sql.runSQLOnFiles";
    /** The sha256 of this source, written into the jar by the builder: the client checks it is the one it expects. */
    public static final String VERSION = readVersion();

    private static final String EXPRESSIONS = "org.apache.spark.sql.catalyst.expressions.";
    private static final String LOGICAL = "org.apache.spark.sql.catalyst.plans.logical.";

    /** Plain query operators of an analyzed plan. Anything else (commands, scripts, UDF operators, relations
     * other than our views) is refused. */
    private static final Set<String> OPERATORS = prefixed(LOGICAL,
        "Project", "Filter", "Aggregate", "Join", "LateralJoin", "Sort", "GlobalLimit", "LocalLimit", "Offset",
        "Tail", "Union", "Intersect", "Except", "Distinct", "Deduplicate", "SubqueryAlias", "LocalRelation",
        "OneRowRelation", "Range", "Generate", "Window", "WithCTE", "CTERelationDef", "CTERelationRef",
        "UnionLoop", "UnionLoopRef", "Sample", "Expand", "Repartition", "RepartitionByExpression",
        "RebalancePartitions", "ResolvedHint", "Subquery");
    private static final Set<String> OTHER_OPERATORS = union(
        prefixed("org.apache.spark.sql.catalyst.analysis.", "ResolvedInlineTable"),
        prefixed(EXPRESSIONS, "PipeOperator"));

    /** Expressions that are not functions: columns, names, constants, sort orders, windows, lambdas, subqueries. */
    private static final Set<String> STRUCTURE = prefixed(EXPRESSIONS,
        "AttributeReference", "Alias", "Literal", "SortOrder", "OuterReference", "NamedLambdaVariable",
        "LambdaFunction", "aggregate.AggregateExpression", "WindowExpression", "WindowSpecDefinition",
        "SpecifiedWindowFrame", "UnspecifiedFrame$", "UnboundedPreceding$", "UnboundedFollowing$", "CurrentRow$",
        "ScalarSubquery", "Exists", "ListQuery", "InSubquery", "LateralSubquery", "GetStructField",
        "GetArrayItem", "GetMapValue", "GetArrayStructFields", "KnownNotNull", "KnownNullable");

    /** Classes that built-in functions registered through a builder (not a class) are built into, and the
     * operators' classes that SQL syntax resolves to without a function name (date + interval, ...). */
    private static final Set<String> BUILT = prefixed(EXPRESSIONS,
        // built by the registry's builders (ceil, lpad, explode, max_by, make_timestamp, variant_get, ...)
        "Ceil", "Floor", "RoundCeil", "RoundFloor", "Collate", "BinaryPredicate", "Contains", "EndsWith",
        "StartsWith", "StringInstr", "StringInstrWithOccurrence", "StringLPad", "StringRPad", "BinaryPad", "Mask",
        "ToCharacter", "StringDecode", "RaiseError", "CurrentTimestamp", "CurrentTimestampNanos", "Now",
        "LocalTimestamp", "LocalTimestampNanos", "Hour", "Minute", "Second", "SecondWithFraction", "HoursOfTime",
        "MinutesOfTime", "SecondsOfTime", "SecondsOfTimeWithFraction", "ExtractANSIIntervalYears",
        "ExtractANSIIntervalMonths", "ExtractANSIIntervalDays", "ExtractANSIIntervalHours",
        "ExtractANSIIntervalMinutes", "ExtractANSIIntervalSeconds", "MakeTimestamp", "MakeTimestampNTZ",
        "MakeTimestampLTZ", "MakeTimestampFromDateTime", "TryMakeTimestamp", "TryMakeTimestampFromDateTime",
        "TimeBucket", "PreciseTimestampConversion", "CounterDiff", "CounterDiffWithStartTime", "Explode",
        "PosExplode", "Inline", "TupleUnionDouble", "TupleUnionInteger", "TupleUnionThetaDouble",
        "TupleUnionThetaInteger", "TryEval", "With", "CommonExpressionDef", "CommonExpressionRef",
        "aggregate.CountMinSketchAgg", "aggregate.MaxBy", "aggregate.MinBy", "aggregate.MaxMinByK",
        "aggregate.Mode", "aggregate.PercentileCont", "aggregate.PercentileDisc", "aggregate.TupleSketchAggDouble",
        "aggregate.TupleSketchAggInteger", "aggregate.TupleUnionAggDouble", "aggregate.TupleUnionAggInteger",
        "variant.ParseJson", "variant.VariantGet", "variant.VariantSet", "variant.VariantInsert",
        "variant.VariantArrayAppend", "variant.VariantStripNulls",
        // what SQL syntax resolves to: date/time arithmetic, LIKE ANY, NULLIF, COLLATE, PIVOT, pipe syntax
        "DateAddInterval", "DateAddYMInterval", "TimestampAddInterval", "TimestampAddYMInterval", "TimeAdd",
        "DatetimeSub", "SubtractDates", "SubtractTimestamps", "TimestampAdd", "TimestampDiff",
        "MultiplyYMInterval", "MultiplyDTInterval", "DivideYMInterval", "DivideDTInterval", "LikeAny",
        "NotLikeAny", "LikeAll", "NotLikeAll", "NullIfResult", "ResolvedCollation",
        "aggregate.PivotFirst");

    /** Internal calls a built-in function is implemented with: allowed only inside an allowed
     * RuntimeReplaceable function, which built them from its own arguments. */
    private static final Set<String> INTERNAL = prefixed(EXPRESSIONS,
        "objects.StaticInvoke", "objects.Invoke");

    /** Groups of Spark's function registry whose functions compute values from their arguments only. */
    private static final Set<String> GROUPS = new HashSet<>(Arrays.asList(
        "agg_funcs", "array_funcs", "bitwise_funcs", "collection_funcs", "conditional_funcs", "conversion_funcs",
        "csv_funcs", "datetime_funcs", "generator_funcs", "hash_funcs", "json_funcs", "lambda_funcs", "map_funcs",
        "math_funcs", "predicate_funcs", "sketch_funcs", "st_funcs", "string_funcs", "struct_funcs", "url_funcs",
        "variant_funcs", "vector_funcs", "window_funcs"));
    /** misc_funcs are allowed one by one: the group also holds reflect, java_method and try_reflect, which call
     * any static Java method. */
    private static final Set<String> MISC = new HashSet<>(Arrays.asList(
        "aes_decrypt", "aes_encrypt", "assert_true", "bitmap_bit_position", "bitmap_bucket_number",
        "bitmap_count", "current_catalog", "current_database", "current_path", "current_schema", "current_user",
        "hmac", "input_file_block_length", "input_file_block_start", "input_file_name", "monotonically_increasing_id",
        "raise_error", "session_user", "spark_partition_id", "try_aes_decrypt", "typeof", "user", "uuid", "version"));
    /** Never allowed, whatever their group: Java calls. (xml_funcs, avro_funcs and protobuf_funcs are not in
     * GROUPS: XML parsers and schema files are a way to files; nothing in the lake needs them.) */
    private static final Set<String> DENIED_NAMES = new HashSet<>(Arrays.asList(
        "reflect", "java_method", "try_reflect"));
    /** Table functions (FROM f(...)) whose output is computed from their arguments. */
    private static final Set<String> TABLE_FUNCTION_GROUPS = new HashSet<>(Arrays.asList(
        "generator_funcs", "json_funcs", "variant_funcs"));

    private static final class Allowed {
        static final Set<String> FUNCTIONS = functionClasses();
        static final Set<String> NAMES = functionNames(true);
        static final Set<String> DENIED_NAMES = functionNames(false);
    }

    @Override
    public BoxedUnit apply(SparkSessionExtensions extensions) {
        extensions.injectParser(new ParserBuilder());
        extensions.injectCheckRule(new RuleBuilder());
        return BoxedUnit.UNIT;
    }

    private static boolean readOnly(SparkSession session) {
        return "true".equalsIgnoreCase(session.conf().get(ENABLED, "false").trim());
    }

    private static final class ParserBuilder extends AbstractFunction2<SparkSession, ParserInterface, ParserInterface> {
        @Override
        public ParserInterface apply(SparkSession session, ParserInterface parser) {
            return new GuardedParser(session, parser);
        }
    }

    /** The session's parser, unchanged, except that a read-only session's statements may name only allowed
     * built-in functions. */
    private static final class GuardedParser implements ParserInterface {
        private final SparkSession session;
        private final ParserInterface parser;

        GuardedParser(SparkSession session, ParserInterface parser) {
            this.session = session;
            this.parser = parser;
        }

        private <T> T checked(T parsed) {
            if (readOnly(session)) {
                // With SQL on files on, the analyzer opens a file named as a table (json.`/path`) to infer its
                // schema, and may quote what it read in an error, all before the plan check runs.
                String problem = "false".equalsIgnoreCase(session.conf().get(SQL_ON_FILES, "true").trim())
                    ? new NameWalker().walk(parsed)
                    : "a read-only session needs " + SQL_ON_FILES + "=false";
                if (problem != null) {
                    throw ReadOnlyGuard.<RuntimeException>unchecked(refusal(problem));
                }
            }
            return parsed;
        }

        @Override
        public LogicalPlan parsePlan(String sqlText) throws ParseException {
            return checked(parser.parsePlan(sqlText));
        }

        @Override
        public LogicalPlan parsePlanWithParameters(String sqlText, ParameterContext context) throws ParseException {
            return checked(parser.parsePlanWithParameters(sqlText, context));
        }

        @Override
        public LogicalPlan parseQuery(String sqlText) throws ParseException {
            return checked(parser.parseQuery(sqlText));
        }

        @Override
        public Expression parseExpression(String sqlText) throws ParseException {
            return checked(parser.parseExpression(sqlText));
        }

        @Override
        public TableIdentifier parseTableIdentifier(String sqlText) throws ParseException {
            return parser.parseTableIdentifier(sqlText);
        }

        @Override
        public FunctionIdentifier parseFunctionIdentifier(String sqlText) throws ParseException {
            return parser.parseFunctionIdentifier(sqlText);
        }

        @Override
        public Seq<String> parseMultipartIdentifier(String sqlText) throws ParseException {
            return parser.parseMultipartIdentifier(sqlText);
        }

        @Override
        public TemporalIdentifier parseTemporalTableIdentifier(String sqlText) throws ParseException {
            return parser.parseTemporalTableIdentifier(sqlText);
        }

        @Override
        public StructType parseRoutineParam(String sqlText) throws ParseException {
            return parser.parseRoutineParam(sqlText);
        }

        @Override
        public SqlStatementSplitResult splitStatements(String sqlText) {
            return parser.splitStatements(sqlText);
        }

        @Override
        public StructType parseTableSchema(String sqlText) throws ParseException {
            return parser.parseTableSchema(sqlText);
        }

        @Override
        public DataType parseDataType(String sqlText) throws ParseException {
            return parser.parseDataType(sqlText);
        }
    }

    /** Walks everything a parsed statement holds (plans, expressions, and the lists, options and tuples of the
     * parser's unresolved nodes) for the functions it names; returns the first problem, or null. */
    private static final class NameWalker {
        private String problem;

        String walk(Object node) {
            visit(node, 0);
            return problem;
        }

        private void visit(Object node, int depth) {
            if (problem != null || node == null || depth > 10_000) {
                return;
            }
            if (node instanceof TreeNode) {
                check((TreeNode<?>) node);
                if (problem != null) {
                    return;
                }
                if (node instanceof SubqueryExpression) {
                    visit(((SubqueryExpression) node).plan(), depth + 1);
                }
            }
            if (node instanceof scala.collection.Iterable) {
                scala.collection.Iterator<?> items = ((scala.collection.Iterable<?>) node).iterator();
                while (items.hasNext()) {
                    visit(items.next(), depth + 1);
                }
            } else if (node instanceof Product) {
                scala.collection.Iterator<Object> fields = ((Product) node).productIterator();
                while (fields.hasNext()) {
                    visit(fields.next(), depth + 1);
                }
            }
        }

        private void check(TreeNode<?> node) {
            if (node instanceof UnresolvedFunction) {
                name(((UnresolvedFunction) node).nameParts(), Allowed.NAMES);
            } else if (node instanceof UnresolvedTableValuedFunction) {
                name(((UnresolvedTableValuedFunction) node).name(), Allowed.NAMES);
            } else if (node instanceof UnresolvedGenerator) {
                FunctionIdentifier id = ((UnresolvedGenerator) node).name();
                if (id.database().isDefined() || !Allowed.NAMES.contains(id.funcName().toLowerCase(Locale.ROOT))) {
                    problem = nameProblem(id.funcName());
                }
            } else if (node instanceof ExpressionWithUnresolvedIdentifier) {
                // IDENTIFIER('name')(...) or IDENTIFIER('name'): a function or a column, named by a constant.
                Expression name = ((ExpressionWithUnresolvedIdentifier) node).identifierExpr();
                if (!(name instanceof Literal) || ((Literal) name).value() == null) {
                    problem = "IDENTIFIER(...) naming a function or column must be a plain string";
                } else {
                    String[] parts = ((Literal) name).value().toString().split("\\.");
                    String last = parts[parts.length - 1].replace("`", "").trim().toLowerCase(Locale.ROOT);
                    if (Allowed.DENIED_NAMES.contains(last)) {
                        problem = nameProblem(last);
                    }
                }
            }
        }

        private void name(Seq<String> parts, Set<String> allowed) {
            List<String> names = new ArrayList<>();
            scala.collection.Iterator<String> items = parts.iterator();
            while (items.hasNext()) {
                names.add(items.next().toLowerCase(Locale.ROOT));
            }
            String last = names.isEmpty() ? "" : names.get(names.size() - 1);
            List<String> qualifier = names.subList(0, Math.max(0, names.size() - 1));
            boolean builtin = qualifier.isEmpty() || qualifier.equals(Collections.singletonList("builtin"))
                || qualifier.equals(Arrays.asList("system", "builtin"));
            if (!builtin || !allowed.contains(last)) {
                problem = nameProblem(String.join(".", names));
            }
        }
    }

    private static String nameProblem(String name) {
        if (name.endsWith("reflect") || name.endsWith("java_method")) {
            return "reflect / java_method / try_reflect call Java methods";
        }
        return "the function " + name + " is not an allowed built-in function";
    }

    private static final class RuleBuilder extends AbstractFunction1<SparkSession, Function1<LogicalPlan, BoxedUnit>> {
        @Override
        public Function1<LogicalPlan, BoxedUnit> apply(SparkSession session) {
            return new Check(session);
        }
    }

    private static final class Check extends AbstractFunction1<LogicalPlan, BoxedUnit> {
        private final SparkSession session;

        Check(SparkSession session) {
            this.session = session;
        }

        @Override
        public BoxedUnit apply(LogicalPlan plan) {
            if (!readOnly(session)) {
                return BoxedUnit.UNIT;
            }
            List<String> problems = new Walker(views(session.conf().get(VIEWS, "")), false).walk(plan);
            if (!problems.isEmpty()) {
                throw ReadOnlyGuard.<RuntimeException>unchecked(refusal(problems.get(0)));
            }
            return BoxedUnit.UNIT;
        }
    }

    /** Why the parser check refuses a parsed statement (the functions it names), or null (for tests and tooling). */
    public static String functionNameProblem(LogicalPlan parsed) {
        return new NameWalker().walk(parsed);
    }

    /** The classes of every operator and expression the rule refuses in a plan, as if read-only were on with
     * these views (for tests and tooling). */
    public static List<String> problems(LogicalPlan plan, String views) {
        return new Walker(views(views), true).walk(plan);
    }

    private static final class Walker {
        private final Set<String> views;
        private final boolean all;
        private final LinkedHashSet<String> found = new LinkedHashSet<>();

        Walker(Set<String> views, boolean all) {
            this.views = views;
            this.all = all;
        }

        List<String> walk(LogicalPlan plan) {
            plan(plan);
            return new ArrayList<>(found);
        }

        private boolean done() {
            return !all && !found.isEmpty();
        }

        private void plan(LogicalPlan plan) {
            if (done()) {
                return;
            }
            if (plan instanceof View) {
                View view = (View) plan;
                if (!isOurView(view)) {
                    found.add("it reads the view " + view.desc().identifier().unquotedString()
                        + ", which is not a table of the lake (stedi sql --tables lists them)");
                }
                return; // our view's body is our own read of the table: not walked
            }
            String name = plan.getClass().getName();
            if (!OPERATORS.contains(name) && !OTHER_OPERATORS.contains(name)) {
                found.add(all ? name : operatorProblem(plan));
                return;
            }
            scala.collection.Iterator<Expression> expressions = plan.expressions().iterator();
            while (expressions.hasNext()) {
                expression(expressions.next(), false);
            }
            scala.collection.Iterator<LogicalPlan> children = plan.children().iterator();
            while (children.hasNext()) {
                plan(children.next());
            }
        }

        private boolean isOurView(View view) {
            TableIdentifier id = view.desc().identifier();
            return view.isTempView() && id.database().isEmpty() && id.catalog().isEmpty()
                && views.contains(id.table().toLowerCase(Locale.ROOT));
        }

        private void expression(Expression expression, boolean insideBuiltIn) {
            if (done()) {
                return;
            }
            String name = expression.getClass().getName();
            boolean allowed = Allowed.FUNCTIONS.contains(name) || STRUCTURE.contains(name) || BUILT.contains(name)
                || (insideBuiltIn && INTERNAL.contains(name));
            if (!allowed) {
                found.add(all ? name : expressionProblem(expression));
                return;
            }
            if (expression instanceof SubqueryExpression) {
                plan(((SubqueryExpression) expression).plan());
            }
            boolean inside = insideBuiltIn || expression instanceof RuntimeReplaceable;
            scala.collection.Iterator<Expression> children = expression.children().iterator();
            while (children.hasNext()) {
                expression(children.next(), inside);
            }
        }
    }

    private static String operatorProblem(LogicalPlan plan) {
        String simple = plan.getClass().getSimpleName();
        if (simple.contains("ScriptTransformation")) {
            return "TRANSFORM / MAP / REDUCE ... USING runs a program";
        }
        if (simple.contains("Relation") || simple.contains("RDD") || simple.contains("Scan")) {
            return "it reads " + plan.nodeName() + ", which is not a table of the lake (a file path, a catalog"
                + " table, ...): only the lake's tables can be queried (stedi sql --tables lists them)";
        }
        if (simple.contains("Command") || simple.contains("Statement")) {
            return plan.nodeName() + " is a command, not a query";
        }
        return "the operator " + plan.nodeName() + " is not allowed in a read-only query";
    }

    private static String expressionProblem(Expression expression) {
        String simple = expression.getClass().getSimpleName();
        if (simple.contains("Reflect")) {
            return "reflect / java_method / try_reflect call Java methods";
        }
        if (simple.contains("UDF") || simple.contains("UserDefined")) {
            return "user-defined functions are not allowed in a read-only query";
        }
        return "the function " + expression.prettyName() + " (" + simple + ") is not allowed in a read-only query";
    }

    private static AnalysisException refusal(String problem) {
        String message = "[" + MARK + " " + VERSION + "] read-only query refused: " + problem;
        return new AnalysisException(message, Option.empty(), Option.empty(), Option.empty(), Option.empty(),
            emptyMap(), new QueryContext[0]);
    }

    /** Scala code throws AnalysisException unchecked; Java must declare it, which Function1.apply cannot. */
    @SuppressWarnings("unchecked")
    private static <E extends Throwable> E unchecked(Throwable error) throws E {
        throw (E) error;
    }

    @SuppressWarnings("unchecked")
    private static scala.collection.immutable.Map<String, String> emptyMap() {
        return (scala.collection.immutable.Map<String, String>) (Object) scala.collection.immutable.Map$.MODULE$.empty();
    }

    private static Set<String> views(String list) {
        Set<String> names = new HashSet<>();
        for (String name : list.split(",")) {
            if (!name.trim().isEmpty()) {
                names.add(name.trim().toLowerCase(Locale.ROOT));
            }
        }
        return names;
    }

    /** The names of the built-in functions (and table functions) that are allowed, or of those that are not. */
    private static Set<String> functionNames(boolean allowedOnes) {
        Set<String> names = new HashSet<>();
        scala.collection.Iterator<Tuple2<String, Tuple2<ExpressionInfo, Function1<scala.collection.immutable.Seq<Expression>, Expression>>>> functions =
            FunctionRegistry$.MODULE$.expressions().iterator();
        while (functions.hasNext()) {
            Tuple2<String, Tuple2<ExpressionInfo, Function1<scala.collection.immutable.Seq<Expression>, Expression>>> entry = functions.next();
            if (allowed(entry._1(), entry._2()._1()) == allowedOnes) {
                names.add(entry._1().toLowerCase(Locale.ROOT));
            }
        }
        scala.collection.Iterator<Tuple2<String, Tuple2<ExpressionInfo, Function1<scala.collection.immutable.Seq<Expression>, LogicalPlan>>>> tables =
            TableFunctionRegistry$.MODULE$.logicalPlans().iterator();
        while (tables.hasNext()) {
            Tuple2<String, Tuple2<ExpressionInfo, Function1<scala.collection.immutable.Seq<Expression>, LogicalPlan>>> entry = tables.next();
            String group = entry._2()._1().getGroup();
            boolean ok = TABLE_FUNCTION_GROUPS.contains(group) || "range".equals(entry._1());
            if (ok == allowedOnes) {
                names.add(entry._1().toLowerCase(Locale.ROOT));
            }
        }
        if (allowedOnes) {
            names.removeAll(functionNames(false)); // a name that is also a denied table function stays denied
        }
        return Collections.unmodifiableSet(names);
    }

    private static boolean allowed(String name, ExpressionInfo info) {
        return !DENIED_NAMES.contains(name)
            && (GROUPS.contains(info.getGroup()) || ("misc_funcs".equals(info.getGroup()) && MISC.contains(name)));
    }

    /** The expression classes of the allowed built-in functions, from Spark's own function registries. */
    private static Set<String> functionClasses() {
        Set<String> allowed = new HashSet<>();
        Set<String> denied = new HashSet<>();
        scala.collection.Iterator<Tuple2<String, Tuple2<ExpressionInfo, Function1<scala.collection.immutable.Seq<Expression>, Expression>>>> functions =
            FunctionRegistry$.MODULE$.expressions().iterator();
        while (functions.hasNext()) {
            Tuple2<String, Tuple2<ExpressionInfo, Function1<scala.collection.immutable.Seq<Expression>, Expression>>> entry = functions.next();
            ExpressionInfo info = entry._2()._1();
            (allowed(entry._1(), info) ? allowed : denied).add(info.getClassName());
        }
        scala.collection.Iterator<Tuple2<String, Tuple2<ExpressionInfo, Function1<scala.collection.immutable.Seq<Expression>, LogicalPlan>>>> tables =
            TableFunctionRegistry$.MODULE$.logicalPlans().iterator();
        while (tables.hasNext()) {
            ExpressionInfo info = tables.next()._2()._1();
            (TABLE_FUNCTION_GROUPS.contains(info.getGroup()) ? allowed : denied).add(info.getClassName());
        }
        allowed.removeAll(denied); // a class registered under a denied name too stays denied
        return Collections.unmodifiableSet(allowed);
    }

    private static Set<String> union(Set<String> one, Set<String> two) {
        Set<String> set = new HashSet<>(one);
        set.addAll(two);
        return Collections.unmodifiableSet(set);
    }

    private static Set<String> prefixed(String prefix, String... names) {
        Set<String> set = new HashSet<>();
        for (String name : names) {
            set.add(prefix + name);
        }
        return Collections.unmodifiableSet(set);
    }

    private static String readVersion() {
        try (InputStream in = ReadOnlyGuard.class.getResourceAsStream("VERSION")) {
            return in == null ? "unknown" : new String(in.readAllBytes(), StandardCharsets.UTF_8).trim();
        } catch (IOException error) {
            return "unknown";
        }
    }
}
