package saml

import "testing"

func TestStatusSegments(t *testing.T) {
	tests := []struct {
		st              Status
		top, sub, short string
	}{
		{Status{}, "", "", ""},
		{Status{Code: StatusSuccess}, "Success", "", "Success"},
		{Status{Code: StatusRequester, SubCode: CodeDeclined}, "Requester", "Declined", "Requester/Declined"},
		{Status{Code: StatusRequester, SubCode: StatusRequestDenied}, "Requester", StatusRequestDenied, "Requester/RequestDenied"},
		{Status{Code: StatusResponder, SubCode: KECISStatusPrefix}, "Responder", KECISStatusPrefix, "Responder/"},
		{Status{Code: "Requester", SubCode: "Pending"}, "Requester", "Pending", "Requester/Pending"},
	}
	for _, tc := range tests {
		if got := tc.st.Top(); got != tc.top {
			t.Errorf("%+v Top() = %q, want %q", tc.st, got, tc.top)
		}
		if got := tc.st.Sub(); got != tc.sub {
			t.Errorf("%+v Sub() = %q, want %q", tc.st, got, tc.sub)
		}
		if got := tc.st.Short(); got != tc.short {
			t.Errorf("%+v Short() = %q, want %q", tc.st, got, tc.short)
		}
	}
	if got := StatusName(CodeProviderUnavailable); got != "ProviderUnavailable" {
		t.Errorf("StatusName = %q", got)
	}
}
