// The masking methods of every model type, each a one-line call into
// redact.go. TestEveryTypeRedacts walks the type graph of Payload and fails
// when a type lacks them.

package ecml

import (
	"fmt"
	"log/slog"
)

// String implements fmt.Stringer with secrets masked.
func (x Payload) String() string { return describe(x, false) }

// GoString implements fmt.GoStringer with secrets masked.
func (x Payload) GoString() string { return describe(x, true) }

// Format implements fmt.Formatter with secrets masked, for every verb.
func (x Payload) Format(f fmt.State, verb rune) { formatValue(f, verb, x) }

// LogValue implements slog.LogValuer: a group of masked values.
func (x Payload) LogValue() slog.Value { return logValue(x) }

// MarshalJSON renders the value masked, for logs; it is not a wire form.
func (x Payload) MarshalJSON() ([]byte, error) { return marshalJSON(x) }

// String implements fmt.Stringer with secrets masked.
func (x Ecom) String() string { return describe(x, false) }

// GoString implements fmt.GoStringer with secrets masked.
func (x Ecom) GoString() string { return describe(x, true) }

// Format implements fmt.Formatter with secrets masked, for every verb.
func (x Ecom) Format(f fmt.State, verb rune) { formatValue(f, verb, x) }

// LogValue implements slog.LogValuer: a group of masked values.
func (x Ecom) LogValue() slog.Value { return logValue(x) }

// MarshalJSON renders the value masked, for logs; it is not a wire form.
func (x Ecom) MarshalJSON() ([]byte, error) { return marshalJSON(x) }

// String implements fmt.Stringer with secrets masked.
func (x Address) String() string { return describe(x, false) }

// GoString implements fmt.GoStringer with secrets masked.
func (x Address) GoString() string { return describe(x, true) }

// Format implements fmt.Formatter with secrets masked, for every verb.
func (x Address) Format(f fmt.State, verb rune) { formatValue(f, verb, x) }

// LogValue implements slog.LogValuer: a group of masked values.
func (x Address) LogValue() slog.Value { return logValue(x) }

// MarshalJSON renders the value masked, for logs; it is not a wire form.
func (x Address) MarshalJSON() ([]byte, error) { return marshalJSON(x) }

// String implements fmt.Stringer with secrets masked.
func (x Postal) String() string { return describe(x, false) }

// GoString implements fmt.GoStringer with secrets masked.
func (x Postal) GoString() string { return describe(x, true) }

// Format implements fmt.Formatter with secrets masked, for every verb.
func (x Postal) Format(f fmt.State, verb rune) { formatValue(f, verb, x) }

// LogValue implements slog.LogValuer: a group of masked values.
func (x Postal) LogValue() slog.Value { return logValue(x) }

// MarshalJSON renders the value masked, for logs; it is not a wire form.
func (x Postal) MarshalJSON() ([]byte, error) { return marshalJSON(x) }

// String implements fmt.Stringer with secrets masked.
func (x Name) String() string { return describe(x, false) }

// GoString implements fmt.GoStringer with secrets masked.
func (x Name) GoString() string { return describe(x, true) }

// Format implements fmt.Formatter with secrets masked, for every verb.
func (x Name) Format(f fmt.State, verb rune) { formatValue(f, verb, x) }

// LogValue implements slog.LogValuer: a group of masked values.
func (x Name) LogValue() slog.Value { return logValue(x) }

// MarshalJSON renders the value masked, for logs; it is not a wire form.
func (x Name) MarshalJSON() ([]byte, error) { return marshalJSON(x) }

// String implements fmt.Stringer with secrets masked.
func (x Street) String() string { return describe(x, false) }

// GoString implements fmt.GoStringer with secrets masked.
func (x Street) GoString() string { return describe(x, true) }

// Format implements fmt.Formatter with secrets masked, for every verb.
func (x Street) Format(f fmt.State, verb rune) { formatValue(f, verb, x) }

// LogValue implements slog.LogValuer: a group of masked values.
func (x Street) LogValue() slog.Value { return logValue(x) }

// MarshalJSON renders the value masked, for logs; it is not a wire form.
func (x Street) MarshalJSON() ([]byte, error) { return marshalJSON(x) }

// String implements fmt.Stringer with secrets masked.
func (x Telecom) String() string { return describe(x, false) }

// GoString implements fmt.GoStringer with secrets masked.
func (x Telecom) GoString() string { return describe(x, true) }

// Format implements fmt.Formatter with secrets masked, for every verb.
func (x Telecom) Format(f fmt.State, verb rune) { formatValue(f, verb, x) }

// LogValue implements slog.LogValuer: a group of masked values.
func (x Telecom) LogValue() slog.Value { return logValue(x) }

// MarshalJSON renders the value masked, for logs; it is not a wire form.
func (x Telecom) MarshalJSON() ([]byte, error) { return marshalJSON(x) }

// String implements fmt.Stringer with secrets masked.
func (x Phone) String() string { return describe(x, false) }

// GoString implements fmt.GoStringer with secrets masked.
func (x Phone) GoString() string { return describe(x, true) }

// Format implements fmt.Formatter with secrets masked, for every verb.
func (x Phone) Format(f fmt.State, verb rune) { formatValue(f, verb, x) }

// LogValue implements slog.LogValuer: a group of masked values.
func (x Phone) LogValue() slog.Value { return logValue(x) }

// MarshalJSON renders the value masked, for logs; it is not a wire form.
func (x Phone) MarshalJSON() ([]byte, error) { return marshalJSON(x) }

// String implements fmt.Stringer with secrets masked.
func (x Online) String() string { return describe(x, false) }

// GoString implements fmt.GoStringer with secrets masked.
func (x Online) GoString() string { return describe(x, true) }

// Format implements fmt.Formatter with secrets masked, for every verb.
func (x Online) Format(f fmt.State, verb rune) { formatValue(f, verb, x) }

// LogValue implements slog.LogValuer: a group of masked values.
func (x Online) LogValue() slog.Value { return logValue(x) }

// MarshalJSON renders the value masked, for logs; it is not a wire form.
func (x Online) MarshalJSON() ([]byte, error) { return marshalJSON(x) }

// String implements fmt.Stringer with secrets masked.
func (x Email) String() string { return describe(x, false) }

// GoString implements fmt.GoStringer with secrets masked.
func (x Email) GoString() string { return describe(x, true) }

// Format implements fmt.Formatter with secrets masked, for every verb.
func (x Email) Format(f fmt.State, verb rune) { formatValue(f, verb, x) }

// LogValue implements slog.LogValuer: a group of masked values.
func (x Email) LogValue() slog.Value { return logValue(x) }

// MarshalJSON renders the value masked, for logs; it is not a wire form.
func (x Email) MarshalJSON() ([]byte, error) { return marshalJSON(x) }

// String implements fmt.Stringer with secrets masked.
func (x Text) String() string { return describe(x, false) }

// GoString implements fmt.GoStringer with secrets masked.
func (x Text) GoString() string { return describe(x, true) }

// Format implements fmt.Formatter with secrets masked, for every verb.
func (x Text) Format(f fmt.State, verb rune) { formatValue(f, verb, x) }

// LogValue implements slog.LogValuer: a group of masked values.
func (x Text) LogValue() slog.Value { return logValue(x) }

// MarshalJSON renders the value masked, for logs; it is not a wire form.
func (x Text) MarshalJSON() ([]byte, error) { return marshalJSON(x) }

// String implements fmt.Stringer with secrets masked.
func (x SecretText) String() string { return describe(x, false) }

// GoString implements fmt.GoStringer with secrets masked.
func (x SecretText) GoString() string { return describe(x, true) }

// Format implements fmt.Formatter with secrets masked, for every verb.
func (x SecretText) Format(f fmt.State, verb rune) { formatValue(f, verb, x) }

// LogValue implements slog.LogValuer: a group of masked values.
func (x SecretText) LogValue() slog.Value { return logValue(x) }

// MarshalJSON renders the value masked, for logs; it is not a wire form.
func (x SecretText) MarshalJSON() ([]byte, error) { return marshalJSON(x) }

// String implements fmt.Stringer with secrets masked.
func (x Payment) String() string { return describe(x, false) }

// GoString implements fmt.GoStringer with secrets masked.
func (x Payment) GoString() string { return describe(x, true) }

// Format implements fmt.Formatter with secrets masked, for every verb.
func (x Payment) Format(f fmt.State, verb rune) { formatValue(f, verb, x) }

// LogValue implements slog.LogValuer: a group of masked values.
func (x Payment) LogValue() slog.Value { return logValue(x) }

// MarshalJSON renders the value masked, for logs; it is not a wire form.
func (x Payment) MarshalJSON() ([]byte, error) { return marshalJSON(x) }

// String implements fmt.Stringer with secrets masked.
func (x Card) String() string { return describe(x, false) }

// GoString implements fmt.GoStringer with secrets masked.
func (x Card) GoString() string { return describe(x, true) }

// Format implements fmt.Formatter with secrets masked, for every verb.
func (x Card) Format(f fmt.State, verb rune) { formatValue(f, verb, x) }

// LogValue implements slog.LogValuer: a group of masked values.
func (x Card) LogValue() slog.Value { return logValue(x) }

// MarshalJSON renders the value masked, for logs; it is not a wire form.
func (x Card) MarshalJSON() ([]byte, error) { return marshalJSON(x) }

// String implements fmt.Stringer with secrets masked.
func (x Date) String() string { return describe(x, false) }

// GoString implements fmt.GoStringer with secrets masked.
func (x Date) GoString() string { return describe(x, true) }

// Format implements fmt.Formatter with secrets masked, for every verb.
func (x Date) Format(f fmt.State, verb rune) { formatValue(f, verb, x) }

// LogValue implements slog.LogValuer: a group of masked values.
func (x Date) LogValue() slog.Value { return logValue(x) }

// MarshalJSON renders the value masked, for logs; it is not a wire form.
func (x Date) MarshalJSON() ([]byte, error) { return marshalJSON(x) }

// String implements fmt.Stringer with secrets masked.
func (x Loyalty) String() string { return describe(x, false) }

// GoString implements fmt.GoStringer with secrets masked.
func (x Loyalty) GoString() string { return describe(x, true) }

// Format implements fmt.Formatter with secrets masked, for every verb.
func (x Loyalty) Format(f fmt.State, verb rune) { formatValue(f, verb, x) }

// LogValue implements slog.LogValuer: a group of masked values.
func (x Loyalty) LogValue() slog.Value { return logValue(x) }

// MarshalJSON renders the value masked, for logs; it is not a wire form.
func (x Loyalty) MarshalJSON() ([]byte, error) { return marshalJSON(x) }

// String implements fmt.Stringer with secrets masked.
func (x User) String() string { return describe(x, false) }

// GoString implements fmt.GoStringer with secrets masked.
func (x User) GoString() string { return describe(x, true) }

// Format implements fmt.Formatter with secrets masked, for every verb.
func (x User) Format(f fmt.State, verb rune) { formatValue(f, verb, x) }

// LogValue implements slog.LogValuer: a group of masked values.
func (x User) LogValue() slog.Value { return logValue(x) }

// MarshalJSON renders the value masked, for logs; it is not a wire form.
func (x User) MarshalJSON() ([]byte, error) { return marshalJSON(x) }

// String implements fmt.Stringer with secrets masked.
func (x Merchant) String() string { return describe(x, false) }

// GoString implements fmt.GoStringer with secrets masked.
func (x Merchant) GoString() string { return describe(x, true) }

// Format implements fmt.Formatter with secrets masked, for every verb.
func (x Merchant) Format(f fmt.State, verb rune) { formatValue(f, verb, x) }

// LogValue implements slog.LogValuer: a group of masked values.
func (x Merchant) LogValue() slog.Value { return logValue(x) }

// MarshalJSON renders the value masked, for logs; it is not a wire form.
func (x Merchant) MarshalJSON() ([]byte, error) { return marshalJSON(x) }

// String implements fmt.Stringer with secrets masked.
func (x Terminal) String() string { return describe(x, false) }

// GoString implements fmt.GoStringer with secrets masked.
func (x Terminal) GoString() string { return describe(x, true) }

// Format implements fmt.Formatter with secrets masked, for every verb.
func (x Terminal) Format(f fmt.State, verb rune) { formatValue(f, verb, x) }

// LogValue implements slog.LogValuer: a group of masked values.
func (x Terminal) LogValue() slog.Value { return logValue(x) }

// MarshalJSON renders the value masked, for logs; it is not a wire form.
func (x Terminal) MarshalJSON() ([]byte, error) { return marshalJSON(x) }

// String implements fmt.Stringer with secrets masked.
func (x Transaction) String() string { return describe(x, false) }

// GoString implements fmt.GoStringer with secrets masked.
func (x Transaction) GoString() string { return describe(x, true) }

// Format implements fmt.Formatter with secrets masked, for every verb.
func (x Transaction) Format(f fmt.State, verb rune) { formatValue(f, verb, x) }

// LogValue implements slog.LogValuer: a group of masked values.
func (x Transaction) LogValue() slog.Value { return logValue(x) }

// MarshalJSON renders the value masked, for logs; it is not a wire form.
func (x Transaction) MarshalJSON() ([]byte, error) { return marshalJSON(x) }

// String implements fmt.Stringer with secrets masked.
func (x TransactionID) String() string { return describe(x, false) }

// GoString implements fmt.GoStringer with secrets masked.
func (x TransactionID) GoString() string { return describe(x, true) }

// Format implements fmt.Formatter with secrets masked, for every verb.
func (x TransactionID) Format(f fmt.State, verb rune) { formatValue(f, verb, x) }

// LogValue implements slog.LogValuer: a group of masked values.
func (x TransactionID) LogValue() slog.Value { return logValue(x) }

// MarshalJSON renders the value masked, for logs; it is not a wire form.
func (x TransactionID) MarshalJSON() ([]byte, error) { return marshalJSON(x) }

// String implements fmt.Stringer with secrets masked.
func (x Code) String() string { return describe(x, false) }

// GoString implements fmt.GoStringer with secrets masked.
func (x Code) GoString() string { return describe(x, true) }

// Format implements fmt.Formatter with secrets masked, for every verb.
func (x Code) Format(f fmt.State, verb rune) { formatValue(f, verb, x) }

// LogValue implements slog.LogValuer: a group of masked values.
func (x Code) LogValue() slog.Value { return logValue(x) }

// MarshalJSON renders the value masked, for logs; it is not a wire form.
func (x Code) MarshalJSON() ([]byte, error) { return marshalJSON(x) }

// String implements fmt.Stringer with secrets masked.
func (x TransactionDate) String() string { return describe(x, false) }

// GoString implements fmt.GoStringer with secrets masked.
func (x TransactionDate) GoString() string { return describe(x, true) }

// Format implements fmt.Formatter with secrets masked, for every verb.
func (x TransactionDate) Format(f fmt.State, verb rune) { formatValue(f, verb, x) }

// LogValue implements slog.LogValuer: a group of masked values.
func (x TransactionDate) LogValue() slog.Value { return logValue(x) }

// MarshalJSON renders the value masked, for logs; it is not a wire form.
func (x TransactionDate) MarshalJSON() ([]byte, error) { return marshalJSON(x) }

// String implements fmt.Stringer with secrets masked.
func (x Data) String() string { return describe(x, false) }

// GoString implements fmt.GoStringer with secrets masked.
func (x Data) GoString() string { return describe(x, true) }

// Format implements fmt.Formatter with secrets masked, for every verb.
func (x Data) Format(f fmt.State, verb rune) { formatValue(f, verb, x) }

// LogValue implements slog.LogValuer: a group of masked values.
func (x Data) LogValue() slog.Value { return logValue(x) }

// MarshalJSON renders the value masked, for logs; it is not a wire form.
func (x Data) MarshalJSON() ([]byte, error) { return marshalJSON(x) }

// String implements fmt.Stringer with secrets masked.
func (x TransactionComplete) String() string { return describe(x, false) }

// GoString implements fmt.GoStringer with secrets masked.
func (x TransactionComplete) GoString() string { return describe(x, true) }

// Format implements fmt.Formatter with secrets masked, for every verb.
func (x TransactionComplete) Format(f fmt.State, verb rune) { formatValue(f, verb, x) }

// LogValue implements slog.LogValuer: a group of masked values.
func (x TransactionComplete) LogValue() slog.Value { return logValue(x) }

// MarshalJSON renders the value masked, for logs; it is not a wire form.
func (x TransactionComplete) MarshalJSON() ([]byte, error) { return marshalJSON(x) }

// String implements fmt.Stringer with secrets masked.
func (x UserData) String() string { return describe(x, false) }

// GoString implements fmt.GoStringer with secrets masked.
func (x UserData) GoString() string { return describe(x, true) }

// Format implements fmt.Formatter with secrets masked, for every verb.
func (x UserData) Format(f fmt.State, verb rune) { formatValue(f, verb, x) }

// LogValue implements slog.LogValuer: a group of masked values.
func (x UserData) LogValue() slog.Value { return logValue(x) }

// MarshalJSON renders the value masked, for logs; it is not a wire form.
func (x UserData) MarshalJSON() ([]byte, error) { return marshalJSON(x) }

// String implements fmt.Stringer with secrets masked.
func (x BirthDate) String() string { return describe(x, false) }

// GoString implements fmt.GoStringer with secrets masked.
func (x BirthDate) GoString() string { return describe(x, true) }

// Format implements fmt.Formatter with secrets masked, for every verb.
func (x BirthDate) Format(f fmt.State, verb rune) { formatValue(f, verb, x) }

// LogValue implements slog.LogValuer: a group of masked values.
func (x BirthDate) LogValue() slog.Value { return logValue(x) }

// MarshalJSON renders the value masked, for logs; it is not a wire form.
func (x BirthDate) MarshalJSON() ([]byte, error) { return marshalJSON(x) }

// String implements fmt.Stringer with secrets masked.
func (x Device) String() string { return describe(x, false) }

// GoString implements fmt.GoStringer with secrets masked.
func (x Device) GoString() string { return describe(x, true) }

// Format implements fmt.Formatter with secrets masked, for every verb.
func (x Device) Format(f fmt.State, verb rune) { formatValue(f, verb, x) }

// LogValue implements slog.LogValuer: a group of masked values.
func (x Device) LogValue() slog.Value { return logValue(x) }

// MarshalJSON renders the value masked, for logs; it is not a wire form.
func (x Device) MarshalJSON() ([]byte, error) { return marshalJSON(x) }

// String implements fmt.Stringer with secrets masked.
func (x BankAccount) String() string { return describe(x, false) }

// GoString implements fmt.GoStringer with secrets masked.
func (x BankAccount) GoString() string { return describe(x, true) }

// Format implements fmt.Formatter with secrets masked, for every verb.
func (x BankAccount) Format(f fmt.State, verb rune) { formatValue(f, verb, x) }

// LogValue implements slog.LogValuer: a group of masked values.
func (x BankAccount) LogValue() slog.Value { return logValue(x) }

// MarshalJSON renders the value masked, for logs; it is not a wire form.
func (x BankAccount) MarshalJSON() ([]byte, error) { return marshalJSON(x) }

// String implements fmt.Stringer with secrets masked.
func (x Transfer) String() string { return describe(x, false) }

// GoString implements fmt.GoStringer with secrets masked.
func (x Transfer) GoString() string { return describe(x, true) }

// Format implements fmt.Formatter with secrets masked, for every verb.
func (x Transfer) Format(f fmt.State, verb rune) { formatValue(f, verb, x) }

// LogValue implements slog.LogValuer: a group of masked values.
func (x Transfer) LogValue() slog.Value { return logValue(x) }

// MarshalJSON renders the value masked, for logs; it is not a wire form.
func (x Transfer) MarshalJSON() ([]byte, error) { return marshalJSON(x) }

// String implements fmt.Stringer with secrets masked.
func (x Terms) String() string { return describe(x, false) }

// GoString implements fmt.GoStringer with secrets masked.
func (x Terms) GoString() string { return describe(x, true) }

// Format implements fmt.Formatter with secrets masked, for every verb.
func (x Terms) Format(f fmt.State, verb rune) { formatValue(f, verb, x) }

// LogValue implements slog.LogValuer: a group of masked values.
func (x Terms) LogValue() slog.Value { return logValue(x) }

// MarshalJSON renders the value masked, for logs; it is not a wire form.
func (x Terms) MarshalJSON() ([]byte, error) { return marshalJSON(x) }

// String implements fmt.Stringer with secrets masked.
func (x AmountAuth) String() string { return describe(x, false) }

// GoString implements fmt.GoStringer with secrets masked.
func (x AmountAuth) GoString() string { return describe(x, true) }

// Format implements fmt.Formatter with secrets masked, for every verb.
func (x AmountAuth) Format(f fmt.State, verb rune) { formatValue(f, verb, x) }

// LogValue implements slog.LogValuer: a group of masked values.
func (x AmountAuth) LogValue() slog.Value { return logValue(x) }

// MarshalJSON renders the value masked, for logs; it is not a wire form.
func (x AmountAuth) MarshalJSON() ([]byte, error) { return marshalJSON(x) }

// String implements fmt.Stringer with secrets masked.
func (x VirtualCard) String() string { return describe(x, false) }

// GoString implements fmt.GoStringer with secrets masked.
func (x VirtualCard) GoString() string { return describe(x, true) }

// Format implements fmt.Formatter with secrets masked, for every verb.
func (x VirtualCard) Format(f fmt.State, verb rune) { formatValue(f, verb, x) }

// LogValue implements slog.LogValuer: a group of masked values.
func (x VirtualCard) LogValue() slog.Value { return logValue(x) }

// MarshalJSON renders the value masked, for logs; it is not a wire form.
func (x VirtualCard) MarshalJSON() ([]byte, error) { return marshalJSON(x) }

// String implements fmt.Stringer with secrets masked.
func (x Escrow) String() string { return describe(x, false) }

// GoString implements fmt.GoStringer with secrets masked.
func (x Escrow) GoString() string { return describe(x, true) }

// Format implements fmt.Formatter with secrets masked, for every verb.
func (x Escrow) Format(f fmt.State, verb rune) { formatValue(f, verb, x) }

// LogValue implements slog.LogValuer: a group of masked values.
func (x Escrow) LogValue() slog.Value { return logValue(x) }

// MarshalJSON renders the value masked, for logs; it is not a wire form.
func (x Escrow) MarshalJSON() ([]byte, error) { return marshalJSON(x) }

// String implements fmt.Stringer with secrets masked.
func (x KeyIn) String() string { return describe(x, false) }

// GoString implements fmt.GoStringer with secrets masked.
func (x KeyIn) GoString() string { return describe(x, true) }

// Format implements fmt.Formatter with secrets masked, for every verb.
func (x KeyIn) Format(f fmt.State, verb rune) { formatValue(f, verb, x) }

// LogValue implements slog.LogValuer: a group of masked values.
func (x KeyIn) LogValue() slog.Value { return logValue(x) }

// MarshalJSON renders the value masked, for logs; it is not a wire form.
func (x KeyIn) MarshalJSON() ([]byte, error) { return marshalJSON(x) }

// String implements fmt.Stringer with secrets masked.
func (x CardAuth) String() string { return describe(x, false) }

// GoString implements fmt.GoStringer with secrets masked.
func (x CardAuth) GoString() string { return describe(x, true) }

// Format implements fmt.Formatter with secrets masked, for every verb.
func (x CardAuth) Format(f fmt.State, verb rune) { formatValue(f, verb, x) }

// LogValue implements slog.LogValuer: a group of masked values.
func (x CardAuth) LogValue() slog.Value { return logValue(x) }

// MarshalJSON renders the value masked, for logs; it is not a wire form.
func (x CardAuth) MarshalJSON() ([]byte, error) { return marshalJSON(x) }
