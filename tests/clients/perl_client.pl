#!/usr/bin/perl
# ctest clients.perl: a second language. OpenAPI::Client (Debian 12:
# libopenapi-client-perl, offline) reads the document the stack serves and
# builds one method per operationId; it validates every request against the
# document before sending it (JSON::Validator's OpenAPI 3 schema), and this
# script validates every response against the document too
# (validate_response: status, headers, body). Money is read exactly: the
# body is decoded again with JSON::PP's allow_bignum, so amounts are
# Math::BigFloat made from the text the server wrote.
#
# Calls: the README's examples (list with sort and fields, create a customer
# payment with an Idempotency-Key and replay it, get it by id), every list
# and get operation, errors 401/403/404/409/422 with their code, and paging
# by Link rel="next" against X-Total-Count. Writes to customers 95 and 96
# only, like the TypeScript clients (tests/e2e/README.md).
#
#   PAY_STACK_ENV=/tmp/st/env perl tests/clients/perl_client.pl
# Ends with "N passed, N failed"; exit status 1 on any failure.
use strict;
use warnings;
use JSON::PP ();
use Math::BigFloat;
use Mojo::URL;
use OpenAPI::Client;

my ($passed, $failed) = (0, 0);
sub check {
    my ($ok, $what, $detail) = @_;
    if ($ok) { $passed++ }
    else { $failed++; print "FAIL: $what", (defined $detail ? " -- $detail" : ''), "\n" }
    return $ok;
}
sub is_eq {
    my ($got, $want, $what) = @_;
    return check(defined $got && $got eq $want, $what, 'got ' . ($got // 'undef') . ", want $want");
}

# ---- the stack --------------------------------------------------------------------
my %ENVF;
{
    my $f = $ENV{PAY_STACK_ENV};
    unless ($f && -r $f) { print "PAY_STACK_ENV is not set or missing: the stack is not running\n"; exit 1 }
    open my $fh, '<', $f or die "$f: $!";
    while (<$fh>) {
        next unless /^([A-Z_][A-Z0-9_]*)='?(.*?)'?$/;
        $ENVF{$1} = $2;
    }
}
my $BASE = $ENVF{PAY_BASE_URL} // '';
die "PAY_BASE_URL $BASE is not a loopback URL\n" unless $BASE =~ m{^http://(127\.0\.0\.1|localhost)(:\d+)?$};

sub token {
    my ($sub, $scope) = @_;
    open my $p, '-|', $ENVF{PAY_BIN}, '--config', $ENVF{PAY_CONFIG}, 'token', '--sub', $sub,
        '--scope', $scope, '--contract-owners', '1,2', '--ttl', '3600' or die "token: $!";
    my $t = <$p>;
    close $p or die "token: exit $?";
    chomp $t;
    return $t;
}
my %TOK = (w => token('clients-perl', 'payments:read payments:write'),
           ro => token('clients-perl-ro', 'payments:read'), none => undef);
my $RUN = sprintf '%d-%d', time, $$;    # fresh Idempotency-Keys per run

# ---- the generated client ---------------------------------------------------------------
my $client = OpenAPI::Client->new("$BASE/v1/openapi.json");
$client->base_url(Mojo::URL->new($BASE));    # servers[0] is "/", relative to the document
our $as = 'w';
$client->ua->on(start => sub {
    my ($ua, $tx) = @_;
    die "refusing a request to ", $tx->req->url->to_abs, "\n"
        unless $tx->req->url->to_abs->host_port eq Mojo::URL->new($BASE)->host_port;
    $tx->req->headers->authorization("Bearer $TOK{$as}") if defined $TOK{$as};
});
my $schema = $client->validator;
# JSON::Validator 5.14 (Debian 12) copies a response's Header Objects into
# parameters without following their $ref (#/components/headers/...), and
# then fails on the $ref as a schema; responses that are $refs
# (#/components/responses/...) it would not validate at all. Both are valid
# OpenAPI 3.0: follow them here, in the loaded document, before any
# validation.
{
    my $doc = $schema->data;
    my $follow = sub {
        my ($obj) = @_;
        for (1 .. 5) {
            last unless ref $obj eq 'HASH' && $obj->{'$ref'} && $obj->{'$ref'} =~ m{^#/(.+)$};
            my $target = $doc;
            $target = $target->{$_ =~ s/~1/\//gr =~ s/~0/~/gr} for split m{/}, $1;
            $obj = $target;
        }
        return $obj;
    };
    for my $item (values %{$doc->{paths}}) {
        for my $op (grep { ref eq 'HASH' && $_->{responses} } values %$item) {
            for my $status (keys %{$op->{responses}}) {
                my $r = {%{$follow->($op->{responses}{$status})}};
                $r->{headers} = {map { ($_ => $follow->($r->{headers}{$_})) } keys %{$r->{headers} // {}}} if $r->{headers};
                $op->{responses}{$status} = $r;
            }
        }
    }
}
# Money (format: decimal): a number with at most 4 decimals, judged on the
# shortest text of the decoded double (as tests/openapi/oas.mjs does).
$schema->formats->{decimal} = sub {
    my ($v) = @_;
    return "$v" =~ /^-?\d+(?:\.\d{1,4})?$/ ? undef : "Not money: $v.";
};
my %route;    # operationId -> [method, path template]
for my $r (@{$schema->routes->to_array}) { $route{$r->{operation_id}} = [$r->{method}, $r->{path}] }
check(scalar(keys %route) == 37, 'the served document has 37 operations (36 of the API, the provider webhook)', scalar keys %route);

my $exact = JSON::PP->new->allow_bignum;    # numbers as Math::BigInt/BigFloat from their text

# Calls operationId through the client as token $who; returns the status,
# the body decoded exactly (or the text), and the transaction. Every
# response is validated against the document.
sub call {
    my ($who, $op, $params, %content) = @_;
    local $as = $who;
    my $tx = $client->call($op => $params // {}, %content);
    my $res = $tx->res;
    my $status = $res->code // 0;
    my $ct = $res->headers->content_type // '';
    my $body = $res->body;
    my $data = $ct =~ m{^application/json} && length $body ? $exact->decode($body) : $body;
    if ($res->error && !$status) { check(0, "$op: no response", $res->error->{message}); return (0) }
    log_response($tx, $ct);
    my ($m, $p) = @{$route{$op}};
    my @errors = $schema->validate_response([$m, $p, $status], {
        body => sub {
            return {exists => length($body) > 0, value => ($ct =~ m{^application/json} ? JSON::PP->new->decode($body) : $body),
                    content_type => ($ct =~ s/;.*//r)};
        },
        header => sub {
            my ($name) = @_;
            my $v = $res->headers->header($name);
            return {exists => defined $v, value => $v};
        },
    });
    check(!@errors, "$op -> $status: the response matches the document", join('; ', map {"$_"} @errors));
    return ($status, $data, $tx);
}

# Every response goes to $PAY_RESPONSE_LOG when set, in the format of
# tests/e2e/paytest.py, for e2e.openapi_responses.
sub log_response {
    my ($tx, $ct) = @_;
    my $log = $ENV{PAY_RESPONSE_LOG} or return;
    my %h;
    for my $name (@{$tx->res->headers->names}) { $h{lc $name} = join ', ', @{$tx->res->headers->every_header($name)} }
    my $url = $tx->req->url;
    my $line = JSON::PP->new->utf8->canonical->encode({method => $tx->req->method,
        path => '/' . ($url->path->to_string =~ s{^/}{}r),
        query => $url->query->to_string, status => 0 + ($tx->res->code // 0), contentType => ($ct eq '' ? undef : $ct),
        headers => \%h, body => $tx->res->text, redirected => JSON::PP::false, test => 'clients/perl_client.pl'});
    open my $fh, '>>', $log or do { print "cannot append to $log: $!\n"; return };
    print $fh "$line\n";
    close $fh;
}

sub is_error {
    my ($st, $data, $tx, $status, $code, $what) = @_;
    return unless check($st == $status, "$what: status", "$st, want $status: " . ($tx ? $tx->res->body : ''));
    is_eq(ref $data eq 'HASH' ? $data->{code} : undef, $code, "$what: code");
    is_eq(ref $data eq 'HASH' ? $data->{requestId} : undef, $tx->res->headers->header('X-Request-Id') // '', "$what: requestId");
}

sub balance {
    my ($st, $b) = call(w => getCustomerBalance => {customer_id => 95});
    check($st == 200, 'balance');
    return $b->{balance};    # Math::BigFloat
}

# ---- the README's examples ---------------------------------------------------------------
{
    my ($st, $rows) = call(w => getCustomerPayments => {customer_id => 95, page => 1, pageSize => 100,
        sort => 'id,paymentDate:desc', fields => 'id,amountInMajorCurrency'});
    check($st == 200 && @$rows > 0, 'list with fields');
    check(!grep({ join(',', sort keys %$_) ne 'amountInMajorCurrency,id' } @$rows), 'fields: only id and amountInMajorCurrency');

    my $before = balance();
    my $key = "clients-perl-seed-$RUN";
    # 150.25 as a Perl number: Mojo::JSON writes it back as 150.25 (15
    # significant digits survive a double); the document's request check
    # wants a JSON number, not a string.
    my @create = (createCustomerPayment => {'Idempotency-Key' => $key,
        body => {customerId => 95, amountInMajorCurrency => 150.25, type => 'BACS', description => 'phone payment'}});
    my ($cs, $p, $tx) = call(w => @create);
    check($cs == 200, 'create a customer payment', $tx->res->body);
    is_eq(ref $p eq 'HASH' && $p->{amountInMajorCurrency}->bstr, '150.25', 'the amount reads back exactly (Math::BigFloat)');
    is_eq(balance()->copy->bsub($before)->bstr, '150.25', 'the balance moved by exactly 150.25');
    my ($rs, $again, $rtx) = call(w => @create);
    is_eq($again->{id}, $p->{id}, 'a replay answers the same payment');
    is_eq($rtx->res->headers->header('Idempotent-Replayed'), 'true', 'Idempotent-Replayed: true');
    my ($gs, $g) = call(w => getCustomerPayment => {customer_payment_id => $p->{id}});
    is_eq($g->{txnType}, 'PAYMENT', 'get by id');
    is_eq($g->{amountInMajorCurrency}->bstr, '150.25', 'get by id: exact amount');

    # 0.10 + 0.20 in Math::BigFloat is 0.30; as doubles it is not.
    my $b0 = balance();
    my $sum = Math::BigFloat->new(0);
    for my $a (0.10, 0.20) {
        my ($s, $adj) = call(w => createCustomerBalanceAdjustment => {body => {customerId => 95, amountInMajorCurrency => $a}});
        $sum->badd($adj->{amountInMajorCurrency});
    }
    is_eq($sum->bstr, '0.3', 'the booked amounts add up to exactly 0.3');
    check(0.1 + 0.2 != 0.3, 'while doubles do not');
    is_eq(balance()->copy->bsub($b0)->bstr, '0.3', 'the balance moved by exactly 0.30');
    call(w => createCustomerBalanceAdjustment => {body => {customerId => 95, amountInMajorCurrency => -0.30}});
}

# ---- every list and get ----------------------------------------------------------------
{
    my %lists = (getPaymentProviders => ['getPaymentProvider', 'payment_provider_id', {}],
                 getInvoicePayments => ['getInvoicePayment', 'invoice_payment_id', {}],
                 getAdhocInvoicePayments => ['getAdhocInvoicePayment', 'adhoc_invoice_payment_id', {}],
                 getRefunds => ['getRefund', 'refund_id', {}],
                 getSitePaymentMandates => ['getSitePaymentMandate', 'site_payment_mandate_id', {}],
                 getCustomerCreditStatus => [undef, undef, {}]);
    for my $list (sort keys %lists) {
        my ($get, $idname, $q) = @{$lists{$list}};
        my ($st, $rows) = call(w => $list => {page => 1, pageSize => 20, %$q});
        check($st == 200 && ref $rows eq 'ARRAY' && @$rows > 0, "$list: rows");
        next unless $get && ref $rows eq 'ARRAY' && @$rows;
        my ($gs, $one) = call(w => $get => {$idname => $rows->[0]{id}});
        is_eq($one->{id}, $rows->[0]{id}, "$get answers the listed row");
        my ($fs, $thin) = call(w => $get => {$idname => $rows->[0]{id}, fields => 'id'});
        is_eq(join(',', keys %$thin), 'id', "$get with fields=id");
    }
    my ($ms, $mandates) = call(w => getSitePaymentMandates => {page => 1, pageSize => 1, siteId => 125, sort => 'id:desc'});
    if (check(ref $mandates eq 'ARRAY' && @$mandates && $mandates->[0]{mandateReference}, 'site 125 has a mandate (fetch_client.ts)')) {
        my $ref = $mandates->[0]{mandateReference};
        my ($ps) = call(w => getPaymentProviderMandate => {paymentMethod => 'GO_CARDLESS', mandateReference => $ref});
        check($ps == 200, 'provider mandate');
        my ($is, $ibp) = call(w => getInstantBankPaymentsForMandate => {mandateReference => $ref, paymentMethod => 'GO_CARDLESS'});
        check($is == 200 && ref $ibp eq 'ARRAY', 'instant bank payments');
    }
    for my $op (qw(getOpenApiDocument getLiveness getReadiness getMetrics)) {
        my ($st) = call(none => $op => {});
        check($st == 200, "$op");
    }
}

# ---- errors ------------------------------------------------------------------------------
{
    is_error(call(none => getCustomerPayments => {customer_id => 95, page => 1, pageSize => 1}), 401, 'UNAUTHENTICATED', '401 without a token');
    is_error(call(ro => createCustomerBalanceAdjustment => {body => {customerId => 95, amountInMajorCurrency => 1}}),
        403, 'INSUFFICIENT_SCOPE', '403 read-only token');
    is_error(call(w => getCustomerPayment => {customer_payment_id => 999999999}), 404, 'NOT_FOUND', '404 unknown payment');
    my ($st, $rows) = call(w => getCustomerPayments => {customer_id => 96, page => 1, pageSize => 10, customerPaymentType => 'INVOICE'});
    my ($inv) = map { $_->{invoiceId} } grep { defined $_->{invoiceId} } @{ref $rows eq 'ARRAY' ? $rows : []};
    is_error(call(w => createRefund => {body => {invoiceId => $inv // 1, billRunType => 'NORMAL', amountInMajorCurrency => 99999}}),
        409, 'CONFLICT', '409 refund above the refundable amount');
    my $key = "clients-perl-reuse-$RUN";
    call(w => createCustomerBalanceAdjustment => {'Idempotency-Key' => $key, body => {customerId => 95, amountInMajorCurrency => 0.01}});
    is_error(call(w => createCustomerBalanceAdjustment => {'Idempotency-Key' => $key, body => {customerId => 95, amountInMajorCurrency => 0.02}}),
        422, 'IDEMPOTENCY_KEY_REUSED', '422 the same key with another body');
    # The generated client refuses what the document forbids, before sending.
    my $tx = $client->call(createCustomerPayment => {body => {customerId => 95, amountInMajorCurrency => 1, type => 'NOT_A_METHOD'}});
    check(($tx->res->code // 0) == 400 && $tx->res->body =~ /errors/ && !$tx->res->headers->header('X-Request-Id'),
        'the client refuses an unknown payment method without sending it', $tx->res->body);
}

# ---- paging --------------------------------------------------------------------------------
{
    my ($page, $total, @ids) = (1, -1);
    while (1) {
        my ($st, $rows, $tx) = call(w => getCustomerPayments => {customer_id => 95, page => $page, pageSize => 5, sort => 'id'});
        last unless check($st == 200, "page $page");
        $total = $tx->res->headers->header('X-Total-Count') if $total < 0;
        push @ids, map { $_->{id} } @$rows;
        my ($next) = ($tx->res->headers->header('Link') // '') =~ /<([^>]+)>;\s*rel="next"/;
        last unless $next;
        $page = Mojo::URL->new($next)->query->param('page');
        die "no end of pages\n" if $page > 1000;
    }
    is_eq(scalar(@ids), $total, 'Link rel=next walks X-Total-Count rows');
    my %seen;
    check(!grep({ $seen{$_}++ } @ids), 'no row twice');
}

print "$passed passed, $failed failed\n";
exit($failed == 0 && $passed > 0 ? 0 : 1);
