//! Enums chosen by a keyword (`--format csv`, `--dedup on`): one list of variants and their
//! keywords gives `Display`, `FromStr` and the list of choices, so the library's option types
//! need no command-line crate and the command line can still list the choices in `--help`.

/// An enum with one keyword per variant.
pub trait Keyword: Sized + Copy + 'static {
    /// Every variant, in the order `--help` lists them.
    const ALL: &'static [Self];
    fn keyword(self) -> &'static str;
    /// A line of help per variant.
    fn help(self) -> &'static str;
}

/// Declares a `Keyword` enum: `keyword_enum!(Name { Variant = "kw": "help", ... })`, with
/// `Display` writing the keyword and `FromStr` taking it in any case.
#[macro_export]
macro_rules! keyword_enum {
    ($(#[$m:meta])* $vis:vis enum $name:ident { $($(#[$vm:meta])* $var:ident = $kw:literal : $help:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        $vis enum $name { $($(#[$vm])* $var),+ }

        impl $crate::model::Keyword for $name {
            const ALL: &'static [$name] = &[$($name::$var),+];
            fn keyword(self) -> &'static str {
                match self { $($name::$var => $kw),+ }
            }
            fn help(self) -> &'static str {
                match self { $($name::$var => $help),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad($crate::model::Keyword::keyword(*self))
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> ::std::result::Result<$name, String> {
                use $crate::model::Keyword;
                $name::ALL
                    .iter()
                    .find(|v| v.keyword().eq_ignore_ascii_case(s.trim()))
                    .copied()
                    .ok_or_else(|| {
                        let all: Vec<&str> = $name::ALL.iter().map(|v| v.keyword()).collect();
                        format!("`{s}` is not one of: {}", all.join(", "))
                    })
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::Keyword;

    crate::keyword_enum!(
        enum Colour {
            Red = "red": "the first",
            DarkBlue = "dark-blue": "the second",
        }
    );

    #[test]
    fn keywords_round_trip() {
        for c in Colour::ALL {
            assert_eq!(c.to_string().parse::<Colour>(), Ok(*c));
        }
        assert_eq!("DARK-BLUE".parse::<Colour>(), Ok(Colour::DarkBlue));
        assert_eq!(
            "green".parse::<Colour>(),
            Err("`green` is not one of: red, dark-blue".to_string())
        );
        assert_eq!(Colour::Red.help(), "the first");
    }
}
