# Cartero's bridge to Sisimai 4.25 (Debian libsisimai-perl): one long-lived process, JSON lines over stdin/stdout.
# Started and kept alive by src/inbound/sisimai.ts (one per API or worker process); docs/bounces.md "Sisimai".
#   hello  (first line out): {"ready":1,"version":"4.25.15"} or {"ready":0,"error":"..."}
#   request  (one line in):  {"id":N,"b64":"<the raw message, base64>"}
#   answer   (one line out): {"id":N,"ok":1,"records":[{...}]} or {"id":N,"ok":0,"error":"..."}
use strict;
use warnings;
use JSON::PP ();
use MIME::Base64 ();
use Encode ();

$| = 1;
binmode STDIN;
binmode STDOUT;
my $json = JSON::PP->new->utf8->canonical;
# A request line longer than this is refused unread (the client caps messages well below it).
my $max_line = 16 * 1024 * 1024;

my $loaded = eval { require Sisimai; require Sisimai::Message; require Sisimai::Data; 1 };
if (!$loaded) {
    my $why = $@ || 'unknown error';
    $why =~ s/\s+/ /g;
    print $json->encode({ ready => 0, error => substr($why, 0, 300) }), "\n";
    exit 0;
}
print $json->encode({ ready => 1, version => Sisimai->version }), "\n";

# Sisimai hands back byte strings or character strings depending on the path the text took; JSON wants characters.
sub text {
    my $v = shift;
    return '' unless defined $v;
    $v = "$v";
    return $v if utf8::is_utf8($v);
    return Encode::decode('UTF-8', $v, Encode::FB_DEFAULT);
}

sub verdicts {
    my $raw = shift;
    my $mesg = Sisimai::Message->new(data => $raw) or return [];
    my $data = Sisimai::Data->make(data => $mesg, delivered => 1) or return [];
    my @out;
    for my $e (@$data) {
        push @out, {
            recipient      => text($e->recipient ? $e->recipient->address : ''),
            deliverystatus => text($e->deliverystatus),
            reason         => text($e->reason),
            softbounce     => 0 + ($e->softbounce eq '' ? -1 : $e->softbounce),
            smtpagent      => text($e->smtpagent),
            diagnosticcode => text($e->diagnosticcode),
            messageid      => text($e->messageid),
            action         => text($e->action),
            feedbacktype   => text($e->feedbacktype),
            replycode      => text($e->replycode),
        };
    }
    return \@out;
}

while (defined(my $line = <STDIN>)) {
    if (length($line) > $max_line) {
        print $json->encode({ id => -1, ok => 0, error => 'request too large' }), "\n";
        next;
    }
    my $req = eval { $json->decode($line) };
    if (!$req || ref $req ne 'HASH') {
        print $json->encode({ id => -1, ok => 0, error => 'unreadable request' }), "\n";
        next;
    }
    my $id = $req->{id} // -1;
    my $records = eval { verdicts(MIME::Base64::decode_base64($req->{b64} // '')) };
    if ($@) {
        my $why = "$@";
        $why =~ s/\s+/ /g;
        print $json->encode({ id => $id, ok => 0, error => substr($why, 0, 300) }), "\n";
        next;
    }
    print $json->encode({ id => $id, ok => 1, records => $records }), "\n";
}
